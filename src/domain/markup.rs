//! What a local author types → HTML: Markdown (CommonMark), raw HTML shown as
//! text, `@name` / `@name@host` mentions and `#hashtags` turned into links the
//! way Mastodon writes them (so its clients style them), never inside code or
//! an existing link. Pure: resolving a mention to an actor URL is the caller's.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag as MdTag, TagEnd, html};
use serde::{Deserialize, Serialize};

use super::content::escape;

/// At most this many mentions are resolved (and notified) per post.
pub const MAX_MENTIONS: usize = 10;
/// At most this many hashtags become tags per post.
pub const MAX_HASHTAGS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TagKind {
    Mention,
    Hashtag,
}

/// A post's mention or hashtag, as it travels in `tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub kind: TagKind,
    /// `@name@host` or `#tag`.
    pub name: String,
    pub href: String,
}

/// A `@name` or `@name@host` found in the text (host lower-cased).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MentionRef {
    pub name: String,
    pub host: Option<String>,
}

impl MentionRef {
    pub fn text(&self) -> String {
        match &self.host {
            Some(h) => format!("@{}@{}", self.name, h),
            None => format!("@{}", self.name),
        }
    }
}

pub struct Rendered {
    pub html: String,
    pub tags: Vec<Tag>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ':'
}

/// A token start must not follow a word character (so `a@b.c` e-mail
/// addresses and `x#y` anchors stay text).
fn boundary_before(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '@' || c == '/' || c == '&'))
}

/// Take `[chars]*` from `s`, trimming trailing dots and dashes (sentence ends).
fn take_while_trim(s: &str, ok: fn(char) -> bool) -> &str {
    let end = s.find(|c: char| !ok(c)).unwrap_or(s.len());
    s[..end].trim_end_matches(['.', '-', ':'])
}

/// Parse a mention at the start of `s` (which begins after the `@`).
fn mention_at(s: &str) -> Option<(MentionRef, usize)> {
    let name = take_while_trim(s, is_name_char);
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    let mut len = name.len();
    let mut host = None;
    if let Some(rest) = s[len..].strip_prefix('@') {
        let h = take_while_trim(rest, is_host_char);
        if h.contains('.') || h.starts_with("localhost") {
            host = Some(h.to_ascii_lowercase());
            len += 1 + h.len();
        }
    }
    Some((
        MentionRef {
            name: name.to_string(),
            host,
        },
        len,
    ))
}

/// Parse a hashtag at the start of `s` (after the `#`): letters, digits and
/// `_`, not all digits (so "#1" stays text, as on Mastodon).
fn hashtag_at(s: &str) -> Option<(String, usize)> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    let tag = &s[..end];
    if tag.is_empty() || tag.chars().count() > 100 || tag.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((tag.to_string(), end))
}

enum Piece {
    Text(String),
    Mention(MentionRef),
    Hashtag(String),
}

fn split(text: &str) -> Vec<Piece> {
    let mut out = vec![];
    let mut plain = String::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().unwrap_or(' ');
        if (c == '@' || c == '#') && boundary_before(text, i) {
            let found = if c == '@' {
                mention_at(&rest[1..]).map(|(m, n)| (Piece::Mention(m), n))
            } else {
                hashtag_at(&rest[1..]).map(|(t, n)| (Piece::Hashtag(t), n))
            };
            if let Some((piece, n)) = found {
                if !plain.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut plain)));
                }
                out.push(piece);
                i += 1 + n;
                continue;
            }
        }
        plain.push(c);
        i += c.len_utf8();
    }
    if !plain.is_empty() {
        out.push(Piece::Text(plain));
    }
    out
}

/// Text outside code and links: where mentions and hashtags count. Consecutive
/// text events are merged first (the parser splits text at special chars).
fn text_runs(src: &str) -> Vec<String> {
    let mut runs = vec![];
    let mut skip = 0usize;
    let mut cur = String::new();
    for ev in Parser::new_ext(src, Options::empty()) {
        match ev {
            Event::Text(t) if skip == 0 => cur.push_str(&t),
            Event::Start(MdTag::CodeBlock(_) | MdTag::Link { .. } | MdTag::Image { .. }) => {
                skip += 1;
                runs.push(std::mem::take(&mut cur));
            }
            Event::End(TagEnd::CodeBlock | TagEnd::Link | TagEnd::Image) => {
                skip = skip.saturating_sub(1);
            }
            _ => runs.push(std::mem::take(&mut cur)),
        }
    }
    runs.push(cur);
    runs.retain(|r| !r.is_empty());
    runs
}

/// The distinct mentions in `src`, in order, at most `MAX_MENTIONS`.
pub fn mentions(src: &str) -> Vec<MentionRef> {
    let mut found: Vec<MentionRef> = vec![];
    for run in text_runs(src) {
        for p in split(&run) {
            if let Piece::Mention(m) = p
                && !found.contains(&m)
                && found.len() < MAX_MENTIONS
            {
                found.push(m);
            }
        }
    }
    found
}

/// Markdown → HTML with mention and hashtag links. `resolve` maps a mention to
/// its actor URL and canonical `@name@host` (None: left as text); `tag_url`
/// gives a hashtag's page. Raw HTML in the source is shown as text. The
/// result still goes through the sanitiser before it is stored.
pub fn render(
    src: &str,
    resolve: &dyn Fn(&MentionRef) -> Option<(String, String)>,
    tag_url: &dyn Fn(&str) -> String,
) -> Rendered {
    let mut tags: Vec<Tag> = vec![];
    let mut events: Vec<Event> = vec![];
    let mut skip = 0usize;
    let mut pending = String::new();
    let opts = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;

    let flush = |pending: &mut String, events: &mut Vec<Event>, tags: &mut Vec<Tag>| {
        if pending.is_empty() {
            return;
        }
        for piece in split(pending) {
            match piece {
                Piece::Text(t) => events.push(Event::Text(CowStr::from(t))),
                Piece::Mention(m) => match resolve(&m) {
                    Some((href, canonical)) => {
                        let short = canonical
                            .trim_start_matches('@')
                            .split('@')
                            .next()
                            .unwrap_or_default()
                            .to_string();
                        events.push(Event::InlineHtml(CowStr::from(format!(
                            "<span class=\"h-card\"><a href=\"{}\" class=\"u-url mention\">@<span>{}</span></a></span>",
                            escape(&href),
                            escape(&short)
                        ))));
                        if !tags.iter().any(|t| t.href == href) {
                            tags.push(Tag {
                                kind: TagKind::Mention,
                                name: canonical,
                                href,
                            });
                        }
                    }
                    None => events.push(Event::Text(CowStr::from(m.text()))),
                },
                Piece::Hashtag(t) => {
                    let lower = t.to_lowercase();
                    let href = tag_url(&lower);
                    events.push(Event::InlineHtml(CowStr::from(format!(
                        "<a href=\"{}\" class=\"mention hashtag\" rel=\"tag\">#<span>{}</span></a>",
                        escape(&href),
                        escape(&t)
                    ))));
                    let count = tags.iter().filter(|x| x.kind == TagKind::Hashtag).count();
                    if count < MAX_HASHTAGS && !tags.iter().any(|x| x.href == href) {
                        tags.push(Tag {
                            kind: TagKind::Hashtag,
                            name: format!("#{lower}"),
                            href,
                        });
                    }
                }
            }
        }
        pending.clear();
    };

    for ev in Parser::new_ext(src, opts) {
        match ev {
            Event::Text(t) if skip == 0 => pending.push_str(&t),
            // Raw HTML is the author's text, not markup.
            Event::Html(h) | Event::InlineHtml(h) => {
                flush(&mut pending, &mut events, &mut tags);
                events.push(Event::Text(h));
            }
            other => {
                flush(&mut pending, &mut events, &mut tags);
                match &other {
                    Event::Start(
                        MdTag::CodeBlock(_) | MdTag::Link { .. } | MdTag::Image { .. },
                    ) => skip += 1,
                    Event::End(TagEnd::CodeBlock | TagEnd::Link | TagEnd::Image) => {
                        skip = skip.saturating_sub(1)
                    }
                    _ => {}
                }
                events.push(other);
            }
        }
    }
    flush(&mut pending, &mut events, &mut tags);
    let mut out = String::new();
    html::push_html(&mut out, events.into_iter());
    Rendered {
        html: out.trim_end().to_string(),
        tags,
    }
}

/// Markdown from elsewhere (PeerTube sends `text/markdown`): rendered with
/// no mention lookups; still sanitised by the caller.
pub fn markdown_to_html(src: &str) -> String {
    render(src, &|_| None, &|_| String::new()).html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(m: &MentionRef) -> Option<(String, String)> {
        match (m.name.as_str(), m.host.as_deref()) {
            ("ana", None) => Some((
                "https://k.example/users/ana".into(),
                "@ana@k.example".into(),
            )),
            ("bob", Some("m.example")) => Some((
                "https://m.example/users/bob".into(),
                "@bob@m.example".into(),
            )),
            _ => None,
        }
    }

    fn tag_url(t: &str) -> String {
        format!("https://k.example/tags/{t}")
    }

    #[test]
    fn markdown_renders_and_raw_html_stays_text() {
        let r = render(
            "**bold** _it_\n\n<script>alert(1)</script>\n\n- a\n- b",
            &resolve,
            &tag_url,
        );
        assert!(r.html.contains("<strong>bold</strong>"), "{}", r.html);
        assert!(r.html.contains("<em>it</em>"));
        assert!(r.html.contains("<li>a</li>"));
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(r.html.contains("&lt;script&gt;"), "{}", r.html);
    }

    #[test]
    fn mentions_and_hashtags_become_links_and_tags() {
        let r = render(
            "Hi @ana and @bob@M.example, see #Fatigue and #MS_life. Not @nobody, not me@mail.example, not #1.",
            &resolve,
            &tag_url,
        );
        assert!(
            r.html
                .contains(r#"<a href="https://k.example/users/ana" class="u-url mention">@<span>ana</span></a>"#),
            "{}",
            r.html
        );
        assert!(r.html.contains(r#"href="https://m.example/users/bob""#));
        assert!(r.html.contains(r#"<a href="https://k.example/tags/fatigue" class="mention hashtag" rel="tag">#<span>Fatigue</span></a>"#));
        assert!(r.html.contains("@nobody"));
        assert!(r.html.contains("me@mail.example"));
        assert!(r.html.contains("#1"));
        let names: Vec<&str> = r.tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["@ana@k.example", "@bob@m.example", "#fatigue", "#ms_life"]
        );
    }

    #[test]
    fn nothing_is_linked_inside_code_or_links() {
        let r = render(
            "`@ana #tag` and\n\n    @ana #code\n\n[@ana #x](https://e.example)",
            &resolve,
            &tag_url,
        );
        assert!(r.tags.is_empty(), "{:?}", r.tags);
        assert!(!r.html.contains("mention"));
    }

    #[test]
    fn mention_list_is_distinct_and_capped() {
        let many: String = (0..30).map(|i| format!("@u{i} @u{i} ")).collect();
        let m = mentions(&many);
        assert_eq!(m.len(), MAX_MENTIONS);
        assert_eq!(
            mentions("hey @Bob@Example.ORG.")[0],
            MentionRef {
                name: "Bob".into(),
                host: Some("example.org".into())
            }
        );
        assert_eq!(
            mentions("@g@localhost:8080")[0].host.as_deref(),
            Some("localhost:8080")
        );
    }
}
