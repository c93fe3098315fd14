//! Secrets read from files: `SHOPRELAY_<NAME>_FILE` names a file holding the value of `SHOPRELAY_<NAME>` (container and systemd credentials).

use std::path::PathBuf;

use super::{invalid, ConfigError};

/// The variables (without the `SHOPRELAY_` prefix, lower case) that may come from a file.
pub(super) const FILE_BACKED: [&str; 7] = [
    "admin_token",
    "erpnext_api_key",
    "erpnext_api_secret",
    "erpnext_webhook_secrets",
    "shop_token",
    "shop_signing_secret",
    "shop_webhook_secret",
];

/// Replaces each `<name>_file` pair by `<name>` with the file's contents (one trailing line
/// break dropped). Names are without the prefix and compared without regard to case; `prefix`
/// only names the variables in errors. A `<name>` set beside its `<name>_file`, a file that
/// cannot be read and an empty file are errors that name the variable and the path, never the
/// contents. Other variables pass through unchanged.
pub(super) fn resolve(
    vars: impl IntoIterator<Item = (String, String)>,
    prefix: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    let set = |name: &str| {
        vars.iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.trim().is_empty())
            .map(|(_, v)| v.clone())
    };
    let mut out: Vec<(String, String)> = vars
        .iter()
        .filter(|(k, _)| {
            !FILE_BACKED
                .iter()
                .any(|n| k.eq_ignore_ascii_case(&format!("{n}_file")))
        })
        .cloned()
        .collect();
    for name in FILE_BACKED {
        let file_var = format!("{name}_file");
        let Some(path) = set(&file_var) else {
            continue;
        };
        let shown = |n: &str| format!("{prefix}{}", n.to_ascii_uppercase());
        if set(name).is_some() {
            return Err(invalid(
                shown(&file_var),
                format!("is set together with {}: set one of them", shown(name)),
            ));
        }
        let path = PathBuf::from(path);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
            var: shown(&file_var),
            path: path.clone(),
            source,
        })?;
        let value = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        if value.trim().is_empty() {
            return Err(invalid(
                shown(&file_var),
                format!("names {}, which is empty", path.display()),
            ));
        }
        out.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        out.push((name.to_owned(), value.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_file_gives_the_value_without_its_trailing_line_break() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret value\r\n").expect("write");
        let out = resolve(
            pairs(&[
                ("SHOP_TOKEN_FILE", file.to_str().expect("utf-8")),
                ("OTHER", "kept"),
            ]),
            "SHOPRELAY_",
        )
        .expect("resolved");
        assert!(out.contains(&("shop_token".into(), "s3cret value".into())));
        assert!(out.contains(&("OTHER".into(), "kept".into())));
        assert!(!out
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("shop_token_file")));
    }

    #[test]
    fn a_variable_and_its_file_together_are_refused() {
        let err = resolve(
            pairs(&[("ADMIN_TOKEN", "a"), ("ADMIN_TOKEN_FILE", "/nonexistent")]),
            "SHOPRELAY_",
        )
        .expect_err("both set");
        assert_eq!(
            err.to_string(),
            "invalid configuration: `SHOPRELAY_ADMIN_TOKEN_FILE` is set together with SHOPRELAY_ADMIN_TOKEN: set one of them"
        );
    }

    #[test]
    fn a_missing_or_empty_file_is_refused_naming_the_variable() {
        let err = resolve(
            pairs(&[("shop_token_file", "/nonexistent/t")]),
            "SHOPRELAY_",
        )
        .expect_err("missing");
        assert!(
            err.to_string()
                .contains("SHOPRELAY_SHOP_TOKEN_FILE names /nonexistent/t"),
            "{err}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("empty");
        std::fs::write(&file, "\n").expect("write");
        let err = resolve(
            pairs(&[("shop_token_file", file.to_str().expect("utf-8"))]),
            "SHOPRELAY_",
        )
        .expect_err("empty");
        assert!(err.to_string().contains("which is empty"), "{err}");
    }
}
