//! Federation policy as plain data: domain entries (parsed and normalised),
//! the instance's mode, and the decision "may we deal with this host?".
//! Also Mastodon's domain-block CSV, read and written. No I/O here: the one
//! enforcing function is `federation::policy::check`.

use std::fmt;

/// `open`: everyone but blocked domains. `allowlist`: only listed domains
/// (and never a blocked one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Open,
    Allowlist,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Open => "open",
            Mode::Allowlist => "allowlist",
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(Mode::Open),
            "allowlist" | "allow-list" | "allow_list" => Ok(Mode::Allowlist),
            other => Err(format!(
                "unknown federation mode {other:?}: use open or allowlist"
            )),
        }
    }
}

/// Which list an entry is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Allow,
    Block,
}

impl List {
    pub fn as_str(self) -> &'static str {
        match self {
            List::Allow => "allow",
            List::Block => "block",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(List::Allow),
            "block" => Some(List::Block),
            _ => None,
        }
    }
}

/// One domain entry: `example.com` (it and its subdomains), `*.example.com`
/// (subdomains only), or `localhost:8002` (that host on that port only).
/// Stored and shown in its canonical form (lowercase, punycode, no trailing
/// dot), so two spellings of one domain are one entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainEntry {
    host: String,
    port: Option<u16>,
    subdomains_only: bool,
}

impl DomainEntry {
    /// Parse what an admin typed (or a CSV cell). Errors say what is wrong.
    pub fn parse(input: &str) -> Result<Self, String> {
        let raw = input.trim();
        if raw.is_empty() {
            return Err("empty domain".into());
        }
        if raw.contains("://") || raw.contains('/') || raw.contains('@') {
            return Err(format!(
                "{raw:?} is not a domain: give only the host, e.g. example.com"
            ));
        }
        let (subdomains_only, rest) = match raw.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        if rest.contains('*') {
            return Err(format!(
                "{raw:?}: a wildcard may only stand first, as in *.example.com"
            ));
        }
        let (host, port) = split_port(rest).map_err(|e| format!("{raw:?}: {e}"))?;
        let host = host.strip_suffix('.').unwrap_or(host);
        let host = normalise_host(host).map_err(|e| format!("{raw:?}: {e}"))?;
        Ok(DomainEntry {
            host,
            port,
            subdomains_only,
        })
    }

    /// Does this entry cover `authority` (`host` or `host:port`, as
    /// `federation::objects::authority` writes it)?
    pub fn matches(&self, authority: &str) -> bool {
        let Some((host, port)) = parse_authority(authority) else {
            return false;
        };
        if self.port.is_some() && self.port != port {
            return false;
        }
        let sub = host.len() > self.host.len()
            && host.ends_with(&self.host)
            && host.as_bytes()[host.len() - self.host.len() - 1] == b'.';
        sub || (!self.subdomains_only && host == self.host)
    }
}

impl fmt::Display for DomainEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subdomains_only {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

fn split_port(s: &str) -> Result<(&str, Option<u16>), String> {
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .map(|p| (h, Some(p)))
            .ok_or_else(|| format!("{p:?} is not a port number")),
        Some(_) => Err("IPv6 addresses are not supported here".into()),
        None => Ok((s, None)),
    }
}

/// Lowercase ASCII (punycode for international names), labels of letters,
/// digits and hyphens, as a URL's host would be.
fn normalise_host(host: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err("empty host".into());
    }
    let ascii = match url::Host::parse(host) {
        Ok(url::Host::Domain(d)) => d,
        Ok(url::Host::Ipv4(ip)) => return Ok(ip.to_string()),
        Ok(url::Host::Ipv6(_)) => return Err("IPv6 addresses are not supported here".into()),
        Err(e) => return Err(format!("not a valid domain ({e})")),
    };
    if ascii.len() > 253 {
        return Err("domain longer than 253 characters".into());
    }
    for label in ascii.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each part between dots must be 1 to 63 characters".into());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!("{label:?} is not a valid part of a domain"));
        }
    }
    Ok(ascii)
}

/// `host[:port]` of a URL's authority, normalised like an entry.
fn parse_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = split_port(authority.trim()).ok()?;
    let host = host.strip_suffix('.').unwrap_or(host);
    Some((normalise_host(host).ok()?, port))
}

/// The instance's policy: mode and both lists, and the local groups that
/// have their own allow-list in force.
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub allow: Vec<DomainEntry>,
    pub block: Vec<DomainEntry>,
    pub groups: Vec<GroupList>,
}

/// A local group's own allow-list, in force.
#[derive(Debug, Clone)]
pub struct GroupList {
    pub id: i64,
    /// The group's ActivityPub id in quotes, as a JSON body names it.
    quoted_ap_id: String,
    pub entries: Vec<DomainEntry>,
}

impl GroupList {
    pub fn new(id: i64, ap_id: &str, entries: Vec<DomainEntry>) -> Self {
        GroupList {
            id,
            quoted_ap_id: format!("\"{ap_id}\""),
            entries,
        }
    }
}

/// Why a host is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Blocked,
    NotListed,
    NotListedByGroup,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Blocked => "blocked",
            Refusal::NotListed => "not on the allow-list",
            Refusal::NotListedByGroup => "not on the group's allow-list",
        }
    }
}

impl Policy {
    pub fn open() -> Self {
        Policy {
            mode: Mode::Open,
            allow: vec![],
            block: vec![],
            groups: vec![],
        }
    }

    /// The decision for a remote `authority`. A block always wins.
    pub fn decide(&self, authority: &str) -> Result<(), Refusal> {
        if self.block.iter().any(|e| e.matches(authority)) {
            return Err(Refusal::Blocked);
        }
        if self.mode == Mode::Allowlist && !self.allow.iter().any(|e| e.matches(authority)) {
            return Err(Refusal::NotListed);
        }
        Ok(())
    }

    /// A restricted group's list, by the group's row id.
    pub fn group(&self, id: i64) -> Option<&GroupList> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The decision for a delivery by actor `sender` to `authority` of
    /// `payload`: the instance's policy, then the list of every restricted
    /// group that sends it or that it names (a reply's copy to a mentioned
    /// person names the group it was posted in).
    pub fn decide_delivery(
        &self,
        authority: &str,
        sender: i64,
        payload: &[u8],
    ) -> Result<(), Refusal> {
        self.decide(authority)?;
        if self.groups.is_empty() {
            return Ok(());
        }
        let text = std::str::from_utf8(payload).unwrap_or_default();
        for g in &self.groups {
            if g.id == sender || text.contains(&g.quoted_ap_id) {
                group_allows(&g.entries, authority)?;
            }
        }
        Ok(())
    }
}

/// A group's own allow-list, applied after the instance's policy.
pub fn group_allows(entries: &[DomainEntry], authority: &str) -> Result<(), Refusal> {
    if entries.iter().any(|e| e.matches(authority)) {
        Ok(())
    } else {
        Err(Refusal::NotListedByGroup)
    }
}

/// One row of a Mastodon domain-block CSV that we take in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvBlock {
    pub line: usize,
    pub domain: DomainEntry,
    /// `suspend` or `silence` (we have no "limited" state: both block).
    pub severity: String,
    pub public_comment: Option<String>,
}

/// What reading a CSV gave: rows to block, and rows set aside with why.
#[derive(Debug, Default)]
pub struct CsvImport {
    pub blocks: Vec<CsvBlock>,
    pub skipped: Vec<(usize, String)>,
}

const CSV_COLUMNS: [&str; 6] = [
    "#domain",
    "#severity",
    "#reject_media",
    "#reject_reports",
    "#public_comment",
    "#obfuscate",
];

/// Read Mastodon's export format. A row we cannot read is an error naming its
/// line, and nothing is taken; `noop` rows and obfuscated domains (`exa*ple.com`,
/// which name no domain) are set aside and reported.
pub fn parse_mastodon_csv(text: &str) -> Result<CsvImport, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let mut out = CsvImport::default();
    let mut index: Option<Vec<usize>> = None;
    let mut seen = std::collections::HashMap::new();
    for (n, line) in lines.by_ref() {
        if line.trim().is_empty() {
            continue;
        }
        let cells = split_csv_line(line).map_err(|e| format!("line {n}: {e}"))?;
        if index.is_none() {
            let header: Vec<String> = cells
                .iter()
                .map(|c| c.trim().to_ascii_lowercase())
                .collect();
            if header
                .first()
                .is_some_and(|h| h.starts_with('#') || h == "domain")
            {
                let find = |name: &str| {
                    header
                        .iter()
                        .position(|h| h.trim_start_matches('#') == name.trim_start_matches('#'))
                };
                if find(CSV_COLUMNS[0]).is_none() {
                    return Err(format!("line {n}: the header has no #domain column"));
                }
                let cols = CSV_COLUMNS
                    .iter()
                    .map(|c| find(c).unwrap_or(usize::MAX))
                    .collect::<Vec<_>>();
                index = Some(cols);
                continue;
            }
            // No header: a plain list of domains (one per line), as some lists are.
            index = Some(vec![
                0,
                usize::MAX,
                usize::MAX,
                usize::MAX,
                usize::MAX,
                usize::MAX,
            ]);
        }
        let cols = index.as_deref().unwrap_or_default();
        let cell = |i: usize| cols.get(i).and_then(|&c| cells.get(c)).map(|s| s.trim());
        let domain = cell(0).unwrap_or_default();
        let severity = cell(1)
            .filter(|s| !s.is_empty())
            .unwrap_or("suspend")
            .to_ascii_lowercase();
        let obfuscated = cell(5).is_some_and(|s| s.eq_ignore_ascii_case("true"));
        if !matches!(severity.as_str(), "suspend" | "silence" | "noop") {
            return Err(format!(
                "line {n}: unknown severity {severity:?} (suspend, silence or noop)"
            ));
        }
        if severity == "noop" {
            out.skipped.push((n, format!("{domain}: severity noop")));
            continue;
        }
        if (domain.contains('*') && !domain.starts_with("*."))
            || (obfuscated && domain.contains('*'))
        {
            out.skipped
                .push((n, format!("{domain}: obfuscated, names no domain")));
            continue;
        }
        let entry = DomainEntry::parse(domain).map_err(|e| format!("line {n}: {e}"))?;
        if let Some(first) = seen.insert(entry.clone(), n) {
            return Err(format!(
                "line {n}: {entry} is listed twice (first on line {first})"
            ));
        }
        out.blocks.push(CsvBlock {
            line: n,
            domain: entry,
            severity,
            public_comment: cell(4).filter(|s| !s.is_empty()).map(str::to_string),
        });
    }
    Ok(out)
}

/// Split one CSV line (RFC 4180 quoting; a field may not span lines).
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut cells = vec![];
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut started = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if started && cur.trim().is_empty() => {
                cur.clear();
                quoted = true;
            }
            (true, '"') => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                    started = false;
                }
            }
            (false, ',') => {
                cells.push(std::mem::take(&mut cur));
                started = true;
            }
            (false, _) if !started && !c.is_whitespace() => {
                return Err("text after a closing quote".into());
            }
            _ => cur.push(c),
        }
    }
    if quoted {
        return Err("a quote is not closed".into());
    }
    cells.push(cur);
    Ok(cells)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"").replace(['\n', '\r'], " "))
    } else {
        s.to_string()
    }
}

/// Our blocks in Mastodon's format (every block is a `suspend`).
pub fn write_mastodon_csv<'a>(
    rows: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for (domain, comment) in rows {
        out.push_str(&format!(
            "{},suspend,false,false,{},false\n",
            csv_field(domain),
            csv_field(comment.unwrap_or_default())
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> DomainEntry {
        DomainEntry::parse(s).unwrap_or_else(|err| panic!("{s}: {err}"))
    }

    #[test]
    fn entries_are_normalised() {
        assert_eq!(e("Example.COM.").to_string(), "example.com");
        assert_eq!(e("  bücher.example ").to_string(), "xn--bcher-kva.example");
        assert_eq!(e("xn--bcher-kva.example"), e("BÜCHER.example"));
        assert_eq!(e("*.Example.com").to_string(), "*.example.com");
        assert_eq!(e("localhost:8002").to_string(), "localhost:8002");
        for bad in [
            "",
            "ex*ample.com",
            "example.*",
            "*example.com",
            "https://example.com/",
            "user@example.com",
            "exa mple.com",
            "-bad.example",
            "example.com:0",
            "example.com:99999",
            "a..b",
        ] {
            assert!(DomainEntry::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn entries_match_subdomains_and_ports() {
        let d = e("example.com");
        assert!(d.matches("example.com"));
        assert!(d.matches("EXAMPLE.com."));
        assert!(d.matches("social.example.com"));
        assert!(d.matches("a.b.example.com:8443"));
        assert!(!d.matches("notexample.com"));
        assert!(!d.matches("example.com.evil"));
        let w = e("*.example.com");
        assert!(w.matches("a.example.com"));
        assert!(!w.matches("example.com"));
        let p = e("localhost:8002");
        assert!(p.matches("localhost:8002"));
        assert!(!p.matches("localhost:8003"));
        assert!(!p.matches("localhost"));
        let idn = e("bücher.example");
        assert!(idn.matches("xn--bcher-kva.example"));
        assert!(idn.matches("shop.xn--bcher-kva.example"));
    }

    #[test]
    fn decisions() {
        let mut p = Policy::open();
        assert!(p.decide("a.example").is_ok());
        p.block.push(e("bad.example"));
        assert_eq!(p.decide("x.bad.example"), Err(Refusal::Blocked));
        p.mode = Mode::Allowlist;
        assert_eq!(p.decide("a.example"), Err(Refusal::NotListed));
        p.allow.push(e("a.example"));
        p.allow.push(e("bad.example"));
        assert!(p.decide("a.example").is_ok());
        assert_eq!(p.decide("bad.example"), Err(Refusal::Blocked));
        assert!(group_allows(&[e("a.example")], "a.example").is_ok());
        assert_eq!(
            group_allows(&[], "a.example"),
            Err(Refusal::NotListedByGroup)
        );
    }

    #[test]
    fn a_delivery_passes_the_list_of_the_group_that_sends_or_is_named() {
        let mut p = Policy::open();
        p.block.push(e("bad.example"));
        p.groups.push(GroupList::new(
            7,
            "https://k.example/groups/club",
            vec![e("a.example")],
        ));
        let plain = br#"{"type":"Create","object":"https://k.example/posts/1"}"#;
        let naming = br#"{"type":"Create","audience":"https://k.example/groups/club"}"#;
        let prefix = br#"{"audience":"https://k.example/groups/club2"}"#;
        // Sent by the group: its list applies.
        assert!(p.decide_delivery("a.example", 7, plain).is_ok());
        assert_eq!(
            p.decide_delivery("b.example", 7, plain),
            Err(Refusal::NotListedByGroup)
        );
        // Sent by someone else: only when the body names the group, exactly.
        assert!(p.decide_delivery("b.example", 8, plain).is_ok());
        assert_eq!(
            p.decide_delivery("b.example", 8, naming),
            Err(Refusal::NotListedByGroup)
        );
        assert!(p.decide_delivery("b.example", 8, prefix).is_ok());
        // The instance's block comes first.
        assert_eq!(
            p.decide_delivery("bad.example", 8, plain),
            Err(Refusal::Blocked)
        );
    }

    #[test]
    fn mastodon_csv_round_trip() {
        let csv = "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n\
                   spam.example,suspend,true,true,\"Spam, lots\",false\n\
                   loud.example,silence,false,false,,false\n\
                   meh.example,noop,false,false,,false\n\
                   ev*l.example,suspend,false,false,,true\n";
        let got = parse_mastodon_csv(csv).unwrap_or_default();
        let names: Vec<String> = got.blocks.iter().map(|b| b.domain.to_string()).collect();
        assert_eq!(names, ["spam.example", "loud.example"]);
        assert_eq!(got.blocks[0].public_comment.as_deref(), Some("Spam, lots"));
        assert_eq!(got.blocks[0].line, 2);
        assert_eq!(got.skipped.len(), 2);
        let out = write_mastodon_csv([("spam.example", Some("Spam, lots"))]);
        let again = parse_mastodon_csv(&out).unwrap_or_default();
        assert_eq!(
            again.blocks[0].public_comment.as_deref(),
            Some("Spam, lots")
        );
    }

    #[test]
    fn bad_csv_names_the_line() {
        let csv = "#domain,#severity\nok.example,suspend\nnot a domain,suspend\n";
        let err = parse_mastodon_csv(csv).err().unwrap_or_default();
        assert!(err.starts_with("line 3:"), "{err}");
        let err = parse_mastodon_csv("#domain,#severity\nx.example,\"open\n")
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("line 2:"), "{err}");
        let err = parse_mastodon_csv("#domain,#severity\nx.example,ban\n")
            .err()
            .unwrap_or_default();
        assert!(err.contains("line 2") && err.contains("severity"), "{err}");
        let err = parse_mastodon_csv("a.example\nb.example\nA.example.\n")
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("line 3:") && err.contains("twice"), "{err}");
        // A plain list works too.
        let plain = parse_mastodon_csv("a.example\nb.example\n").unwrap_or_default();
        assert_eq!(plain.blocks.len(), 2);
    }
}
