//! A target as the API wants it: a domain or subdomain without scheme and `www.`, or a
//! page as an absolute URL. Parsed once, trusted everywhere after.
//!
//! An internationalised name (`münchen.de`) is its punycode (`xn--mnchen-3ya.de`),
//! written bare or as a URL's host alike: UTS #46 processing ([`idna`], as the `url`
//! crate does for a URL's host), which also lowercases; a name UTS #46 refuses is
//! refused with the label and why. The API is sent, and echoes, the ASCII form, and
//! the warehouse keys rows by it.
//!
//! What the API would refuse is refused here, before anything is paid: a host that is
//! no DNS name (an empty label, a label starting or ending with `-` or longer than
//! [`MAX_LABEL_CHARS`], a name longer than [`MAX_DOMAIN_CHARS`], all counted on the
//! ASCII form) and no valid IPv4 address (`999.999.999.999`), a page URL longer than
//! [`MAX_URL_CHARS`], and any control character. Errors quote the value escaped and
//! cut ([`crate::words::shown`]).

use std::fmt;
use std::net::Ipv4Addr;

use url::{Host, Url};

use crate::words::shown;

/// The longest page URL a target may be, in characters (as normalized, and as
/// written): 2,048, the length browsers, crawlers and sitemaps (sitemaps.org) agree
/// on. No longer target is sent, and no longer value is read as a target at all.
pub const MAX_URL_CHARS: usize = 2048;

/// The longest domain name, without its trailing dot (RFC 1035: 255 octets on the
/// wire, 253 characters written).
pub const MAX_DOMAIN_CHARS: usize = 253;

/// The longest label of a domain name (RFC 1035).
pub const MAX_LABEL_CHARS: usize = 63;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Domain(String),
    Page(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("empty target")]
    Empty,
    #[error("`{}` is not a valid domain or absolute URL", shown(.0))]
    Invalid(String),
    #[error("`{}` is not a valid domain: {why}", shown(.target))]
    Host { target: String, why: String },
    #[error(
        "`{}` holds a control character; a target is a domain or an absolute URL",
        shown(.0)
    )]
    Control(String),
    #[error(
        "`{}` is too long: a page URL may have at most {MAX_URL_CHARS} characters, a domain {MAX_DOMAIN_CHARS}",
        shown(.0)
    )]
    TooLong(String),
    #[error(
        "`{}` looks like a page: pages must be absolute URLs (http:// or https://)",
        shown(.0)
    )]
    RelativePage(String),
    #[error("`{}` has a scheme other than http or https", shown(.0))]
    Scheme(String),
}

impl Target {
    /// Normalizes what a user wrote: `https://www.Example.com/` becomes the domain
    /// `example.com`; `https://example.com/blog/` stays a page URL.
    pub fn parse(raw: &str) -> Result<Target, TargetError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(TargetError::Empty);
        }
        if s.chars().any(char::is_control) {
            return Err(TargetError::Control(s.to_string()));
        }
        if s.chars().count() > MAX_URL_CHARS {
            return Err(TargetError::TooLong(s.to_string()));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            if scheme != "http" && scheme != "https" {
                return Err(TargetError::Scheme(s.to_string()));
            }
            let url = Url::parse(s).map_err(|e| url_error(e, s))?;
            let host = url
                .host_str()
                .ok_or_else(|| TargetError::Invalid(s.to_string()))?;
            let bare = (url.path() == "/" || url.path().is_empty())
                && url.query().is_none()
                && url.fragment().is_none()
                && url.port().is_none();
            if bare {
                return Ok(Target::Domain(normalize_host(host, s)?));
            }
            if let Some(Host::Domain(d)) = url.host() {
                check_host(d.trim_end_matches('.'), s)?;
            }
            if url.as_str().chars().count() > MAX_URL_CHARS {
                return Err(TargetError::TooLong(s.to_string()));
            }
            return Ok(Target::Page(url.to_string()));
        }
        let host = s.trim_end_matches('/');
        if host.contains('/') || host.contains('?') {
            return Err(TargetError::RelativePage(s.to_string()));
        }
        Ok(Target::Domain(normalize_host(host, s)?))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Target::Domain(d) => d,
            Target::Page(p) => p,
        }
    }

    pub fn is_page(&self) -> bool {
        matches!(self, Target::Page(_))
    }

    /// The domain target the target belongs to: itself, or a page's host without
    /// `www.` (what an endpoint that takes only domains is given instead of a page).
    pub fn as_domain(&self) -> Target {
        match self {
            Target::Domain(_) => self.clone(),
            Target::Page(_) => {
                let host = self.domain();
                Target::parse(&host).unwrap_or(Target::Domain(host))
            }
        }
    }

    /// The host the target belongs to, without `www.` (for the 100-domain rule of
    /// `bulk_pages_summary`).
    pub fn domain(&self) -> String {
        match self {
            Target::Domain(d) => d.clone(),
            Target::Page(p) => Url::parse(p)
                .ok()
                .and_then(|u| {
                    u.host_str()
                        .map(|h| h.trim_start_matches("www.").to_string())
                })
                .unwrap_or_else(|| p.clone()),
        }
    }
}

/// A domain target's host: its ASCII form ([`ascii_host`]: punycode, lower case),
/// without its trailing dot and `www.`, and a name the API takes (see [`check_host`]).
fn normalize_host(host: &str, raw: &str) -> Result<String, TargetError> {
    let host = ascii_host(host.trim_end_matches('.'), raw)?;
    let host = host.strip_prefix("www.").unwrap_or(&host).to_string();
    let ok = host.contains('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !ok {
        return Err(TargetError::Invalid(raw.to_string()));
    }
    check_host(&host, raw)?;
    Ok(host)
}

/// The ASCII form of a host as UTS #46 processing gives it (the same processing the
/// `url` crate gives a URL's host, so a name written bare and as a URL agree):
/// punycode for each label that is not ASCII, every label lower case, an `xn--`
/// label checked to decode to a name IDNA allows. Characters outside letters,
/// digits, `-` and `.` pass through, for [`normalize_host`] to refuse.
fn ascii_host(host: &str, raw: &str) -> Result<String, TargetError> {
    idna::domain_to_ascii(host).map_err(|_| TargetError::Host {
        target: raw.to_string(),
        why: idna_why(host),
    })
}

/// Why UTS #46 refuses `host`: the first label it marks wrong (its processing
/// replaces what is wrong with U+FFFD), and what is wrong with it.
fn idna_why(host: &str) -> String {
    use idna::uts46::{AsciiDenyList, Hyphens, Uts46};
    let uts46 = Uts46::new();
    let (marked, _) = uts46.to_unicode(host.as_bytes(), AsciiDenyList::EMPTY, Hyphens::Allow);
    // The dots UTS #46 reads as label separators.
    let dots = ['.', '\u{3002}', '\u{ff0e}', '\u{ff61}'];
    let written: Vec<&str> = host.split(dots).collect();
    let label = marked
        .split('.')
        .position(|l| l.contains('\u{fffd}'))
        .and_then(|i| written.get(i).copied());
    let Some(label) = label else {
        return "the IDNA rules (UTS #46) refuse it as an internationalised domain name".into();
    };
    let refused = |c: char| idna::domain_to_ascii(&c.to_string()).is_err() && !dots.contains(&c);
    if label
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
    {
        format!(
            "its label `{}` is no valid punycode: an `xn--` label must decode to a name the IDNA rules (UTS #46) allow",
            shown(label)
        )
    } else if let Some(c) = label.chars().find(|&c| refused(c)) {
        format!(
            "its label `{}` holds `{}` (U+{:04X}), which the IDNA rules (UTS #46) do not allow there",
            shown(label),
            shown(&c.to_string()),
            c as u32
        )
    } else {
        format!(
            "its label `{}` breaks the IDNA rules (UTS #46) on mixing right-to-left and left-to-right letters, or on joiners",
            shown(label)
        )
    }
}

/// Whether `host` (ASCII, no trailing dot) is a name the API takes: a valid IPv4
/// address, or a DNS name of at most [`MAX_DOMAIN_CHARS`] characters whose labels are
/// 1 to [`MAX_LABEL_CHARS`] characters, neither starting nor ending with `-`, and
/// whose last label is not a number (`999.999.999.999` is neither).
fn check_host(host: &str, raw: &str) -> Result<(), TargetError> {
    let bad = |why: String| TargetError::Host {
        target: raw.to_string(),
        why,
    };
    let labels: Vec<&str> = host.split('.').collect();
    let numeric = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit());
    if labels.iter().all(|l| numeric(l)) {
        return match host.parse::<Ipv4Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(bad(
                "a numeric address must be an IPv4 address: four numbers from 0 to 255, without leading zeros"
                    .into(),
            )),
        };
    }
    let chars = host.chars().count();
    if chars > MAX_DOMAIN_CHARS {
        return Err(bad(format!(
            "it has {chars} characters, and a domain name at most {MAX_DOMAIN_CHARS}"
        )));
    }
    for label in &labels {
        if label.is_empty() {
            return Err(bad(
                "it has an empty label (two dots in a row, or a leading dot)".into(),
            ));
        }
        let n = label.chars().count();
        if n > MAX_LABEL_CHARS {
            return Err(bad(format!(
                "its label `{}` has {n} characters, and a label at most {MAX_LABEL_CHARS}",
                shown(label)
            )));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad(format!(
                "its label `{}` starts or ends with `-`",
                shown(label)
            )));
        }
    }
    if labels.last().is_some_and(|l| numeric(l)) {
        return Err(bad(
            "its last label is a number, which no domain's is".into()
        ));
    }
    Ok(())
}

/// Why `Url::parse` refused `s`: a host UTS #46 refuses is said so, with why; any
/// other failure is no valid URL.
fn url_error(e: url::ParseError, s: &str) -> TargetError {
    if e == url::ParseError::IdnaError {
        // The host as written: after the scheme and any user, before the path, query,
        // fragment or port.
        let rest = s.split_once("://").map_or(s, |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = host.split(':').next().unwrap_or(host);
        if let Err(e) = ascii_host(host.trim_end_matches('.'), s) {
            return e;
        }
    }
    TargetError::Invalid(s.to_string())
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_lose_scheme_www_case_and_trailing_slash() {
        for raw in [
            "example.com",
            "www.example.com",
            "https://www.Example.com/",
            "http://example.com",
            "EXAMPLE.COM.",
        ] {
            assert_eq!(
                Target::parse(raw).unwrap(),
                Target::Domain("example.com".into()),
                "{raw}"
            );
        }
    }

    #[test]
    fn subdomains_other_than_www_are_kept() {
        assert_eq!(
            Target::parse("blog.example.com").unwrap(),
            Target::Domain("blog.example.com".into())
        );
    }

    #[test]
    fn pages_stay_absolute_urls() {
        let t = Target::parse("https://www.example.com/blog/").unwrap();
        assert_eq!(t, Target::Page("https://www.example.com/blog/".into()));
        assert_eq!(t.domain(), "example.com");
        assert_eq!(t.as_domain(), Target::Domain("example.com".into()));
        let t = Target::parse("https://blog.example.com.:8443/a?b").unwrap();
        assert_eq!(t.as_domain(), Target::Domain("blog.example.com".into()));
    }

    #[test]
    fn relative_pages_and_junk_are_rejected() {
        assert_eq!(
            Target::parse("example.com/blog"),
            Err(TargetError::RelativePage("example.com/blog".into()))
        );
        assert!(Target::parse("ftp://example.com").is_err());
        assert!(Target::parse("not a domain").is_err());
        assert!(Target::parse("").is_err());
        assert!(Target::parse("localhost").is_err());
    }

    fn host_error(raw: &str) -> String {
        match Target::parse(raw) {
            Err(e @ TargetError::Host { .. }) => e.to_string(),
            other => panic!("{raw}: expected a host error, got {other:?}"),
        }
    }

    #[test]
    fn a_numeric_host_must_be_a_valid_ipv4_address() {
        assert_eq!(
            Target::parse("8.8.8.8").unwrap(),
            Target::Domain("8.8.8.8".into())
        );
        assert!(Target::parse("https://8.8.8.8/page").unwrap().is_page());
        for raw in [
            "999.999.999.999",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
        ] {
            assert!(host_error(raw).contains("IPv4"), "{raw}");
        }
        assert!(Target::parse("http://999.999.999.999/").is_err());
        assert!(host_error("example.123").contains("last label is a number"));
        // Numbers are fine elsewhere in a name.
        assert!(Target::parse("123.example.com").is_ok());
    }

    #[test]
    fn labels_may_not_start_or_end_with_a_hyphen_or_be_empty() {
        for raw in [
            "-bad.example.com",
            "bad-.example.com",
            "a.-b.com",
            "https://-bad.example.com/page",
        ] {
            assert!(host_error(raw).contains("starts or ends with `-`"), "{raw}");
        }
        assert!(Target::parse("my-site.example.com").is_ok());
        assert!(Target::parse("xn--bcher-kva.de").is_ok());
        for raw in ["a..b.com", ".example.com"] {
            assert!(host_error(raw).contains("empty label"), "{raw}");
        }
        assert!(host_error("https://a..b.com/page").contains("empty label"));
    }

    #[test]
    fn labels_over_63_and_names_over_253_characters_are_refused() {
        let label63 = "a".repeat(63);
        assert!(Target::parse(&format!("{label63}.com")).is_ok());
        let e = host_error(&format!("{}.com", "a".repeat(64)));
        assert!(
            e.contains("has 64 characters, and a label at most 63"),
            "{e}"
        );
        // 4 labels of 63 and the dots between: 255 characters.
        let long = [label63.as_str(); 4].join(".");
        let e = host_error(&long);
        assert!(
            e.contains("255 characters, and a domain name at most 253"),
            "{e}"
        );
        let fits = format!("{}.{}.{}.{}", label63, label63, label63, "a".repeat(61));
        assert_eq!(fits.len(), 253);
        assert!(Target::parse(&fits).is_ok());
        assert!(host_error(&format!("https://{long}/page")).contains("at most 253"));
    }

    #[test]
    fn a_target_over_2048_characters_is_refused_and_quoted_cut() {
        let page = format!("https://example.com/{}", "p".repeat(MAX_URL_CHARS - 20));
        assert_eq!(page.len(), MAX_URL_CHARS);
        assert!(Target::parse(&page).unwrap().is_page());
        let over = format!("{page}p");
        let e = Target::parse(&over).unwrap_err();
        assert_eq!(e, TargetError::TooLong(over.clone()));
        let shown = e.to_string();
        assert!(shown.len() < 300, "{shown}");
        assert!(shown.contains("(2049 characters)"), "{shown}");
        // A URL whose normalized form grows past the limit (spaces are percent-encoded).
        let spaces = format!("https://example.com/{}", " x".repeat(1000));
        assert!(matches!(
            Target::parse(&spaces),
            Err(TargetError::TooLong(_))
        ));
        let domain = "a.".repeat(6401) + "com";
        assert!(matches!(
            Target::parse(&domain),
            Err(TargetError::TooLong(_))
        ));
    }

    #[test]
    fn control_characters_are_refused_and_shown_escaped() {
        for raw in [
            "exa\u{1b}[31mmple.com",
            "example.com\u{0}",
            "https://example.com/a\u{0}b",
            "https://example.com/\u{7}",
        ] {
            let e = Target::parse(raw).unwrap_err();
            assert_eq!(e, TargetError::Control(raw.trim().to_string()));
            let shown = e.to_string();
            assert!(!shown.chars().any(char::is_control), "{shown:?}");
        }
        assert!(
            Target::parse("\u{1b}]0;x\u{7}")
                .unwrap_err()
                .to_string()
                .starts_with("`\\u{1b}]0;x\\u{7}` holds a control character")
        );
    }

    #[test]
    fn an_internationalised_name_is_its_punycode_written_bare_or_in_a_url() {
        for raw in [
            "münchen.de",
            "MÜNCHEN.DE",
            "www.münchen.de",
            "münchen。de",
            "https://München.de/",
            "xn--mnchen-3ya.de",
            "XN--MNCHEN-3YA.DE",
        ] {
            assert_eq!(
                Target::parse(raw).unwrap(),
                Target::Domain("xn--mnchen-3ya.de".into()),
                "{raw}"
            );
        }
        assert_eq!(
            Target::parse("https://www.münchen.de/stadt?x=1").unwrap(),
            Target::Page("https://www.xn--mnchen-3ya.de/stadt?x=1".into())
        );
        // Non-transitional processing: `ß` is kept, not made `ss`.
        assert_eq!(
            Target::parse("faß.de").unwrap(),
            Target::Domain("xn--fa-hia.de".into())
        );
    }

    #[test]
    fn a_name_uts46_refuses_is_refused_with_the_label_and_why() {
        for raw in ["xn--a.com", "https://xn--a.com/page"] {
            let e = host_error(raw);
            assert!(e.contains("its label `xn--a` is no valid punycode"), "{e}");
        }
        let e = host_error("ex\u{e000}ample.com");
        assert!(
            e.contains("holds `\u{e000}` (U+E000), which the IDNA rules (UTS #46) do not allow"),
            "{e}"
        );
        for raw in ["a\u{5d0}.com", "https://a\u{5d0}.com/"] {
            let e = host_error(raw);
            assert!(e.contains("right-to-left and left-to-right"), "{e}");
        }
    }

    #[test]
    fn the_dns_rules_count_the_ascii_form() {
        // 60 `ü` are 60 characters written, and a 66-character punycode label.
        let label = "ü".repeat(60);
        let ascii = idna::domain_to_ascii(&label).unwrap();
        assert!(ascii.len() > MAX_LABEL_CHARS, "{ascii}");
        let e = host_error(&format!("{label}.de"));
        assert!(
            e.contains("has 66 characters, and a label at most 63"),
            "{e}"
        );
        assert!(Target::parse(&format!("{}.de", "ü".repeat(57))).is_ok());
    }
}
