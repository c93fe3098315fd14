//! ERPNext REST client: `Authorization: token key:secret`, `/api/resource` lists with Frappe's
//! paging (`limit_start`, `limit_page_length`; the server's default page is 20 rows), and
//! Frappe error bodies decoded into plain words.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::ErpnextSettings;
use crate::http::{authorized_client, encode_segment, ClientSetupError};
use crate::model::BinRow;

/// A failed ERPNext call. Never contains the API key or secret.
#[derive(Debug, thiserror::Error)]
pub enum ErpError {
    #[error("ERPNext could not be reached")]
    Transport(#[source] reqwest::Error),
    #[error("ERPNext answered {status}{}: {message}", exc_type.as_deref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Status {
        status: u16,
        exc_type: Option<String>,
        message: String,
    },
    #[error("ERPNext's answer could not be understood: {0}")]
    Decode(String),
    #[error("cannot set up the ERPNext client")]
    Setup(#[from] ClientSetupError),
}

impl ErpError {
    /// True for refusals that no retry will change: a bad request, no permission, a conflict,
    /// a validation error.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Status {
                status: 400 | 403 | 409 | 417,
                ..
            }
        )
    }
}

/// Strips HTML tags from a Frappe message.
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// Decodes a Frappe v1 error body: `exc_type`, and `_server_messages` (a JSON string holding a
/// list of JSON strings, each an object with `message`).
pub fn decode_frappe_error(status: u16, body: &str) -> ErpError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let exc_type = parsed
        .as_ref()
        .and_then(|v| v.get("exc_type"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut messages: Vec<String> = Vec::new();
    if let Some(outer) = parsed
        .as_ref()
        .and_then(|v| v.get("_server_messages"))
        .and_then(Value::as_str)
    {
        if let Ok(list) = serde_json::from_str::<Vec<String>>(outer) {
            for item in list {
                let msg = serde_json::from_str::<Value>(&item)
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or(item);
                messages.push(plain(&msg));
            }
        }
    }
    if messages.is_empty() {
        if let Some(m) = parsed
            .as_ref()
            .and_then(|v| v.get("exception"))
            .and_then(Value::as_str)
        {
            messages.push(plain(m));
        }
    }
    let message = if messages.is_empty() {
        match status {
            401 => {
                "the API key or secret is wrong (erpnext.api_key / erpnext.api_secret)".to_owned()
            }
            403 => "the API user lacks permission for this document type".to_owned(),
            404 => "not found".to_owned(),
            _ => plain(&body.chars().take(300).collect::<String>()),
        }
    } else {
        messages.join("; ")
    };
    ErpError::Status {
        status,
        exc_type,
        message,
    }
}

/// What the site says of its clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteClock {
    /// The System Settings time zone (None: not set, Frappe then uses the server's zone).
    pub time_zone: Option<String>,
    /// The server's `Date` header, in seconds since 1970-01-01 UTC.
    pub utc_secs: i64,
}

/// A client for one ERPNext site.
#[derive(Clone)]
pub struct ErpClient {
    http: reqwest::Client,
    base: String,
    page_size: usize,
    readback_batch: usize,
}

impl ErpClient {
    /// Builds a client with the site's URL and token credentials.
    pub fn new(settings: &ErpnextSettings) -> Result<Self, ErpError> {
        let http = authorized_client(
            &format!(
                "token {}:{}",
                settings.api_key.expose(),
                settings.api_secret.expose()
            ),
            "ERPNext API key or secret",
            settings.timeout_secs,
        )?;
        Ok(Self {
            http,
            base: settings.url.as_str().trim_end_matches('/').to_owned(),
            page_size: settings.page_size,
            readback_batch: settings.readback_batch,
        })
    }

    fn resource_url(&self, doctype: &str) -> String {
        format!("{}/api/resource/{}", self.base, encode_segment(doctype))
    }

    async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ErpError> {
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(ErpError::Transport)?;
        if !(200..300).contains(&status) {
            return Err(decode_frappe_error(status, &text));
        }
        serde_json::from_str(&text).map_err(|e| ErpError::Decode(e.to_string()))
    }

    /// One page of `GET /api/resource/{doctype}`.
    pub async fn list_page<T: DeserializeOwned>(
        &self,
        doctype: &str,
        fields: &[&str],
        filters: &Value,
        order_by: &str,
        limit_start: usize,
        limit: usize,
    ) -> Result<Vec<T>, ErpError> {
        #[derive(serde::Deserialize)]
        struct Data<T> {
            data: Vec<T>,
        }
        let fields = serde_json::to_string(fields).map_err(|e| ErpError::Decode(e.to_string()))?;
        let resp = self
            .http
            .get(self.resource_url(doctype))
            .query(&[
                ("fields", fields.as_str()),
                ("filters", &filters.to_string()),
                ("order_by", order_by),
                ("limit_start", &limit_start.to_string()),
                ("limit_page_length", &limit.to_string()),
            ])
            .send()
            .await
            .map_err(ErpError::Transport)?;
        Ok(Self::decode::<Data<T>>(resp).await?.data)
    }

    /// Every row matching `filters`, page by page (ordered by `name` so pages do not overlap).
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        doctype: &str,
        fields: &[&str],
        filters: &Value,
    ) -> Result<Vec<T>, ErpError> {
        let mut out = Vec::new();
        loop {
            let page: Vec<T> = self
                .list_page(
                    doctype,
                    fields,
                    filters,
                    "name asc",
                    out.len(),
                    self.page_size,
                )
                .await?;
            let n = page.len();
            out.extend(page);
            if n < self.page_size {
                return Ok(out);
            }
        }
    }

    /// `POST /api/resource/{doctype}` (insert) or, with a name, `PUT .../{name}` (update).
    pub async fn save_doc(
        &self,
        doctype: &str,
        name: Option<&str>,
        body: &Value,
    ) -> Result<Value, ErpError> {
        #[derive(serde::Deserialize)]
        struct Data {
            data: Value,
        }
        let req = match name {
            None => self.http.post(self.resource_url(doctype)),
            Some(n) => self.http.put(format!(
                "{}/{}",
                self.resource_url(doctype),
                encode_segment(n)
            )),
        };
        let resp = req.json(body).send().await.map_err(ErpError::Transport)?;
        Ok(Self::decode::<Data>(resp).await?.data)
    }

    /// `GET /api/method/{method}` with query parameters; returns `message`.
    pub async fn method(&self, method: &str, query: &[(&str, &str)]) -> Result<Value, ErpError> {
        let url = format!("{}/api/method/{method}", self.base);
        Self::message(self.http.get(url).query(query)).await
    }

    /// Sends a `/api/method` request; returns its `message`.
    async fn message(req: reqwest::RequestBuilder) -> Result<Value, ErpError> {
        #[derive(serde::Deserialize)]
        struct Message {
            #[serde(default)]
            message: Value,
        }
        let resp = req.send().await.map_err(ErpError::Transport)?;
        Ok(Self::decode::<Message>(resp).await?.message)
    }

    /// `POST /api/method/{method}` with a JSON body; returns `message`.
    pub async fn post_method(&self, method: &str, body: &Value) -> Result<Value, ErpError> {
        let url = format!("{}/api/method/{method}", self.base);
        Self::message(self.http.post(url).json(body)).await
    }

    /// `DELETE /api/resource/{doctype}/{name}`.
    pub async fn delete_doc(&self, doctype: &str, name: &str) -> Result<(), ErpError> {
        let url = format!("{}/{}", self.resource_url(doctype), encode_segment(name));
        let resp = self
            .http
            .delete(url)
            .send()
            .await
            .map_err(ErpError::Transport)?;
        Self::decode::<Value>(resp).await.map(|_| ())
    }

    /// How many rows of `doctype` match `filters` (`frappe.client.get_count`).
    pub async fn count(&self, doctype: &str, filters: &Value) -> Result<u64, ErpError> {
        let v = self
            .method(
                "frappe.client.get_count",
                &[("doctype", doctype), ("filters", &filters.to_string())],
            )
            .await?;
        v.as_u64()
            .ok_or_else(|| ErpError::Decode(format!("get_count answered {v}")))
    }

    async fn fetch_doc(&self, doctype: &str, name: &str) -> Result<reqwest::Response, ErpError> {
        let url = format!("{}/{}", self.resource_url(doctype), encode_segment(name));
        self.http.get(url).send().await.map_err(ErpError::Transport)
    }

    /// One document (`GET /api/resource/{doctype}/{name}`), None when ERPNext says 404.
    pub async fn get_doc<T: DeserializeOwned>(
        &self,
        doctype: &str,
        name: &str,
    ) -> Result<Option<T>, ErpError> {
        #[derive(serde::Deserialize)]
        struct Data<T> {
            data: T,
        }
        let resp = self.fetch_doc(doctype, name).await?;
        match Self::decode::<Data<T>>(resp).await {
            Ok(d) => Ok(Some(d.data)),
            Err(ErpError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The site's clock: its System Settings time zone and the UTC time of its HTTP `Date`
    /// header, from one `GET` of the System Settings document.
    pub async fn site_clock(&self) -> Result<SiteClock, ErpError> {
        #[derive(serde::Deserialize)]
        struct Data {
            data: SystemSettings,
        }
        #[derive(serde::Deserialize)]
        struct SystemSettings {
            #[serde(default)]
            time_zone: Option<String>,
        }
        let resp = self.fetch_doc("System Settings", "System Settings").await?;
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        let settings = Self::decode::<Data>(resp).await?.data;
        let utc_secs =
            date.ok_or_else(|| ErpError::Decode("the answer has no readable Date header".into()))?;
        Ok(SiteClock {
            time_zone: settings
                .time_zone
                .map(|z| z.trim().to_owned())
                .filter(|z| !z.is_empty()),
            utc_secs,
        })
    }

    /// The current Bin rows of `items` in `warehouses`, in batches of at most `readback_batch`
    /// items whose request line stays under [`MAX_REQUEST_LINE`]; returns the rows and the
    /// number of requests made.
    pub async fn bins(
        &self,
        items: &[String],
        warehouses: &[String],
    ) -> Result<(Vec<BinRow>, usize), ErpError> {
        let mut rows = Vec::new();
        let mut requests = 0;
        for chunk in self.readback_chunks(items, warehouses) {
            let filters =
                serde_json::json!([["item_code", "in", chunk], ["warehouse", "in", warehouses]]);
            // A chunk has at most one Bin per (item, warehouse): one page of that size holds all.
            let limit = (chunk.len() * warehouses.len()).max(1);
            rows.extend(
                self.list_page::<BinRow>("Bin", &BinRow::FIELDS, &filters, "name asc", 0, limit)
                    .await?,
            );
            requests += 1;
        }
        Ok((rows, requests))
    }

    /// Splits `items` into read-back batches: at most `readback_batch` items each, and short
    /// enough that the whole `GET` line stays under [`MAX_REQUEST_LINE`].
    fn readback_chunks<'a>(&self, items: &'a [String], warehouses: &[String]) -> Vec<&'a [String]> {
        let fields = serde_json::to_string(&BinRow::FIELDS).unwrap_or_default();
        let whs = serde_json::to_string(warehouses).unwrap_or_default();
        // Path, the fields and warehouse lists, the filter's frame and the paging parameters.
        let base = self.resource_url("Bin").len() + query_len(&fields) + query_len(&whs) + 200;
        let mut chunks = Vec::new();
        let (mut start, mut len) = (0, base);
        for (i, item) in items.iter().enumerate() {
            let add = query_len(&serde_json::to_string(item).unwrap_or_default()) + 3;
            if i > start && (len + add > MAX_REQUEST_LINE || i - start >= self.readback_batch) {
                chunks.push(&items[start..i]);
                (start, len) = (i, base);
            }
            len += add;
        }
        if start < items.len() {
            chunks.push(&items[start..]);
        }
        chunks
    }
}

/// The longest request line the relay sends: Frappe's web server (gunicorn, default settings)
/// refuses one over 4,094 bytes with 400 "Request Line is too large".
pub const MAX_REQUEST_LINE: usize = 3_500;

/// The length of `s` in a query string (`application/x-www-form-urlencoded`).
fn query_len(s: &str) -> usize {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_' | b' ') {
                1
            } else {
                3
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_backs_of_many_items_keep_every_request_line_short() {
        let settings = crate::config::Settings::from_toml(
            r#"[erpnext]
url = "http://erp.localhost:8000"
api_key = "k"
api_secret = "s"
webhook_secrets = ["w"]
readback_batch = 1000
[shop]
base_url = "http://127.0.0.1:1"
token = "t"
[[channels]]
name = "web"
warehouses = ["Stores - ACME"]
"#,
            &[],
        )
        .expect("settings");
        let client = ErpClient::new(&settings.erpnext).expect("client");
        let items: Vec<String> = (0..500)
            .map(|i| format!("STOCK-TAKE-ITEM-{i:04}"))
            .collect();
        let whs = vec![
            "Stores - ACME".to_owned(),
            "Finished Goods - ACME".to_owned(),
        ];
        let chunks = client.readback_chunks(&items, &whs);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 500);
        assert!(chunks.len() < 10, "{}", chunks.len());
        for chunk in chunks {
            let filters = serde_json::json!([["item_code", "in", chunk], ["warehouse", "in", whs]]);
            let url = reqwest::Url::parse_with_params(
                &client.resource_url("Bin"),
                &[
                    (
                        "fields",
                        serde_json::to_string(&BinRow::FIELDS).expect("fields"),
                    ),
                    ("filters", filters.to_string()),
                    ("order_by", "name asc".to_owned()),
                    ("limit_start", "0".to_owned()),
                    ("limit_page_length", "500".to_owned()),
                ],
            )
            .expect("url");
            let line = format!("GET {}?{} HTTP/1.1", url.path(), url.query().unwrap_or(""));
            assert!(line.len() <= 4094, "{}", line.len());
        }
    }

    #[test]
    fn server_messages_are_decoded_into_plain_words() {
        let body = r#"{"exc_type": "ValidationError", "_server_messages": "[\"{\\\"message\\\": \\\"Item <b>X</b> not found\\\", \\\"title\\\": \\\"Message\\\"}\"]"}"#;
        let e = decode_frappe_error(417, body);
        assert_eq!(
            e.to_string(),
            "ERPNext answered 417 (ValidationError): Item X not found"
        );
        assert!(e.is_permanent());
        let e = decode_frappe_error(401, r#"{"exc_type": "AuthenticationError"}"#);
        assert!(e.to_string().contains("API key or secret"), "{e}");
        assert!(!decode_frappe_error(502, "Bad Gateway").is_permanent());
        assert!(decode_frappe_error(403, "{}").is_permanent());
    }
}
