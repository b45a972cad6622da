//! A target as the API wants it: a domain or subdomain without scheme and `www.`, or a
//! page as an absolute URL. Parsed once, trusted everywhere after.

use std::fmt;

use url::Url;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Domain(String),
    Page(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("empty target")]
    Empty,
    #[error("`{0}` is not a valid domain or absolute URL")]
    Invalid(String),
    #[error("`{0}` looks like a page: pages must be absolute URLs (http:// or https://)")]
    RelativePage(String),
    #[error("`{0}` has a scheme other than http or https")]
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
        if let Some((scheme, _)) = s.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            if scheme != "http" && scheme != "https" {
                return Err(TargetError::Scheme(s.to_string()));
            }
            let url = Url::parse(s).map_err(|_| TargetError::Invalid(s.to_string()))?;
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

fn normalize_host(host: &str, raw: &str) -> Result<String, TargetError> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host).to_string();
    let ok = !host.is_empty()
        && host.contains('.')
        && !host.starts_with('.')
        && !host.contains("..")
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        Ok(host)
    } else {
        Err(TargetError::Invalid(raw.to_string()))
    }
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
}
