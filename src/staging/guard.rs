//! The production guard: `staging-test` creates and submits documents, so it runs only against
//! an ERPNext whose host is listed in `staging_test.allowed_sites`, unless the user says, with
//! `--i-know-this-is-production`, that they mean it.

/// Why the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("refusing to run: ERPNext {url} has no host name")]
    NoHost { url: String },
    #[error("refusing to run against ERPNext at {host}: `staging_test.allowed_sites` is empty, so every site counts as production. List your staging site there (e.g. allowed_sites = [\"{host}\"]), or pass --i-know-this-is-production")]
    NothingAllowed { host: String },
    #[error("refusing to run against ERPNext at {host}: it is not in `staging_test.allowed_sites` ({allowed}), so it may be production. The test creates and submits an Item, a Material Receipt, a Sales Order, a Delivery Note and a Shipment there. Add the host to the list, or pass --i-know-this-is-production")]
    NotAllowed { host: String, allowed: String },
}

/// The host part of an `allowed_sites` entry: a host (`erp-staging.example.com`), a host with
/// a port, a pattern (`*.staging.example.com`), or a URL.
fn entry_host(entry: &str) -> String {
    let e = entry.trim();
    let e = e.split_once("://").map(|(_, rest)| rest).unwrap_or(e);
    let e = e.split(['/', '?', '#']).next().unwrap_or_default();
    let e = e.rsplit_once('@').map(|(_, h)| h).unwrap_or(e);
    // A port is ignored; IPv6 literals keep their brackets.
    let host = match (e.starts_with('['), e.rsplit_once(':')) {
        (false, Some((h, port))) if port.chars().all(|c| c.is_ascii_digit()) => h,
        (true, _) => e.split_once(']').map(|(h, _)| &h[1..]).unwrap_or(e),
        _ => e,
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// True when `host` matches `entry` (exactly, case-insensitively, or under a `*.` pattern).
fn matches(entry: &str, host: &str) -> bool {
    let pattern = entry_host(entry);
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(&format!(".{suffix}")),
        None => !pattern.is_empty() && pattern == host,
    }
}

/// Checks the ERPNext URL against the allowed sites. `production_ok` (the flag) lets any site
/// through.
pub fn check(
    erpnext: &reqwest::Url,
    allowed: &[String],
    production_ok: bool,
) -> Result<(), GuardError> {
    if production_ok {
        return Ok(());
    }
    let host = erpnext
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
        .ok_or_else(|| GuardError::NoHost {
            url: erpnext.to_string(),
        })?;
    if allowed.iter().all(|a| a.trim().is_empty()) {
        return Err(GuardError::NothingAllowed { host });
    }
    if allowed.iter().any(|a| matches(a, &host)) {
        Ok(())
    } else {
        Err(GuardError::NotAllowed {
            host,
            allowed: allowed.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).expect("url")
    }

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_listed_host_passes_in_any_spelling() {
        let erp = url("https://ERP-Staging.example.com:8443/app");
        for entry in [
            "erp-staging.example.com",
            "ERP-STAGING.example.com.",
            "erp-staging.example.com:8443",
            "https://erp-staging.example.com/",
            "*.example.com",
        ] {
            assert_eq!(check(&erp, &list(&[entry]), false), Ok(()), "{entry}");
        }
    }

    #[test]
    fn an_unlisted_host_is_refused_and_the_message_says_how_to_proceed() {
        let erp = url("https://erp.example.com");
        let err = check(&erp, &list(&["erp-staging.example.com"]), false).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("erp.example.com") && text.contains("--i-know-this-is-production"),
            "{text}"
        );
        // A suffix is not a subdomain, and a pattern does not match its own base.
        for entry in ["*.erp.example.com", "example.com", "*.ample.com", ""] {
            assert!(check(&erp, &list(&[entry]), false).is_err(), "{entry}");
        }
        assert!(check(
            &url("https://evil-example.com"),
            &list(&["*.example.com"]),
            false
        )
        .is_err());
    }

    #[test]
    fn an_empty_list_refuses_everything_until_the_flag_is_given() {
        let erp = url("http://127.0.0.1:8000");
        assert!(matches!(
            check(&erp, &[], false),
            Err(GuardError::NothingAllowed { .. })
        ));
        assert_eq!(check(&erp, &[], true), Ok(()));
        assert_eq!(check(&erp, &list(&["127.0.0.1"]), false), Ok(()));
        assert_eq!(
            check(&url("http://[::1]:8000"), &list(&["[::1]:8000"]), false),
            Ok(())
        );
    }
}
