//! The lab's settings, read from the environment in this one place, and the one message a lab
//! test or benchmark prints when it skips for want of a lab.
#![allow(dead_code)]

/// The lab site's settings, as the environment gives them.
#[derive(Debug, Clone)]
pub struct LabEnv {
    /// `ERPNEXT_URL`, without a trailing `/`.
    pub url: String,
    pub key: String,
    pub secret: String,
    /// `ERPNEXT_COMPANY`, default `ACME`.
    pub company: String,
    /// `ERPNEXT_WAREHOUSE`, default `Stores - ACME`.
    pub warehouse: String,
    /// `ERPNEXT_CUSTOMER`, default `Lab Customer`.
    pub customer: String,
}

impl LabEnv {
    /// The lab from the environment, or why there is none: `ERPNEXT_URL`, `ERPNEXT_API_KEY` and
    /// `ERPNEXT_API_SECRET` must be set and not empty.
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let need = |k: &str| {
            var(k).ok_or_else(|| {
                format!(
                    "{k} is not set, so there is no ERPNext lab to run against \
                     (set -a; . $LAB/lab.env; set +a)"
                )
            })
        };
        let url = need("ERPNEXT_URL")?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            key: need("ERPNEXT_API_KEY")?,
            secret: need("ERPNEXT_API_SECRET")?,
            company: var("ERPNEXT_COMPANY").unwrap_or_else(|| "ACME".into()),
            warehouse: var("ERPNEXT_WAREHOUSE").unwrap_or_else(|| "Stores - ACME".into()),
            customer: var("ERPNEXT_CUSTOMER").unwrap_or_else(|| "Lab Customer".into()),
        })
    }
}

/// The lab for `test`, or None after printing the one skip message (`TEST: skipped: WHY`).
pub fn env_or_skip(test: &str) -> Option<LabEnv> {
    match LabEnv::from_env() {
        Ok(env) => Some(env),
        Err(why) => {
            eprintln!("{test}: skipped: {why}");
            None
        }
    }
}
