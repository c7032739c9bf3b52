//! Post content: limits, plain text to HTML for local authors, and an
//! allow-list sanitiser for HTML from anywhere else.

use std::collections::HashSet;

pub const MAX_TITLE_CHARS: usize = 300;
pub const MAX_BODY_CHARS: usize = 20_000;

pub fn validate_title(title: &str) -> Result<String, String> {
    let t = title.trim();
    if t.is_empty() {
        return Err("a thread needs a title".into());
    }
    if t.chars().count() > MAX_TITLE_CHARS {
        return Err(format!("a title has at most {MAX_TITLE_CHARS} characters"));
    }
    Ok(t.to_string())
}

pub fn validate_body(body: &str) -> Result<String, String> {
    let b = body.trim();
    if b.is_empty() {
        return Err("the text cannot be empty".into());
    }
    if b.chars().count() > MAX_BODY_CHARS {
        return Err(format!("a post has at most {MAX_BODY_CHARS} characters"));
    }
    Ok(b.to_string())
}

/// Plain text → HTML: escaped, blank lines make paragraphs, newlines `<br>`.
pub fn plain_text_to_html(text: &str) -> String {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let lines: Vec<String> = p.lines().map(escape).collect();
            format!("<p>{}</p>", lines.join("<br>"))
        })
        .collect()
}

/// HTML-escape text (for attribute values and text nodes).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Remote HTML → safe HTML: an allow-list of text tags, http(s)/mailto links
/// only, no styles, scripts, frames or event handlers; links get
/// `rel="nofollow noopener noreferrer"`.
pub fn sanitize_html(html: &str) -> String {
    HTML.clean(html).to_string()
}

/// The allow-list, built once: building it (sets of tags and classes) cost
/// as much as cleaning a short post.
static HTML: std::sync::LazyLock<ammonia::Builder<'static>> = std::sync::LazyLock::new(|| {
    let tags: HashSet<&str> = [
        "p",
        "br",
        "a",
        "span",
        "em",
        "strong",
        "b",
        "i",
        "u",
        "s",
        "del",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "sup",
        "sub",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    ]
    .into_iter()
    .collect();
    // The classes Mastodon's clients use to style mentions and hashtags, and
    // to shorten long links; nothing else.
    let classes = [
        ("a", ["mention", "hashtag", "u-url"].as_slice()),
        ("span", ["h-card", "invisible", "ellipsis"].as_slice()),
    ]
    .into_iter()
    .map(|(t, c)| (t, c.iter().copied().collect()))
    .collect();
    let mut b = ammonia::Builder::default();
    b.tags(tags)
        .allowed_classes(classes)
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("nofollow noopener noreferrer"));
    b
});

/// Strips every tag (`sanitize_plain`), built once.
static PLAIN: std::sync::LazyLock<ammonia::Builder<'static>> =
    std::sync::LazyLock::new(ammonia::Builder::empty);

/// Zero-width and direction-control characters: invisible on screen.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Text a local person typed, minus characters that are invisible on screen.
/// Stored as typed otherwise: pages escape it when they show it.
pub fn strip_invisible(s: &str) -> String {
    s.chars().filter(|c| !is_invisible(*c)).collect()
}

/// Plain text of a title or name from elsewhere: tags stripped, trimmed, capped.
pub fn sanitize_plain(s: &str, max_chars: usize) -> String {
    let cleaned = PLAIN.clean(s).to_string();
    let text = cleaned
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"");
    // Zero-width and direction-override characters can disguise a name.
    text.chars()
        .filter(|c| !is_invisible(*c))
        .collect::<String>()
        .trim()
        .chars()
        .take(max_chars)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_escaped_and_paragraphed() {
        assert_eq!(
            plain_text_to_html("Hi <b>all</b>\nline two\n\n& more"),
            "<p>Hi &lt;b&gt;all&lt;/b&gt;<br>line two</p><p>&amp; more</p>"
        );
    }

    #[test]
    fn hostile_html_is_cleaned() {
        let dirty = r#"<p onclick="x()">hi<script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">l</a><iframe src="https://e"></iframe><span style="color:red">s</span></p>"#;
        let clean = sanitize_html(dirty);
        for bad in [
            "script",
            "onerror",
            "onclick",
            "javascript",
            "iframe",
            "style",
            "<img",
        ] {
            assert!(!clean.contains(bad), "{bad} left in {clean}");
        }
        assert!(clean.contains("hi"));
        let link = sanitize_html(r#"<a href="https://ok.example/x">ok</a>"#);
        assert!(link.contains(r#"href="https://ok.example/x""#));
        assert!(link.contains("noopener"));
        let mention = sanitize_html(
            r#"<span class="h-card evil"><a class="u-url mention x" href="https://m.example/@a">@<span>a</span></a></span>"#,
        );
        assert!(mention.contains(r#"class="h-card""#), "{mention}");
        assert!(mention.contains(r#"class="u-url mention""#), "{mention}");
        assert!(!mention.contains("evil") && !mention.contains(" x\""));
    }

    #[test]
    fn limits() {
        assert!(validate_title("  ").is_err());
        assert_eq!(validate_title(" Fatigue ").as_deref(), Ok("Fatigue"));
        assert!(validate_title(&"x".repeat(301)).is_err());
        assert!(validate_body("").is_err());
        assert!(validate_body(&"x".repeat(20_001)).is_err());
        assert_eq!(sanitize_plain("<b>Tom</b> &amp; Jerry", 100), "Tom & Jerry");
        assert_eq!(sanitize_plain("abcdef", 3), "abc");
        assert_eq!(sanitize_plain("Mal\u{202e}lo\u{200b}ry", 100), "Mallory");
    }
}
