//! ERPNext REST client: `Authorization: token key:secret`, `/api/resource` lists with Frappe's
//! paging (`limit_start`, `limit_page_length`; the server's default page is 20 rows), and
//! Frappe error bodies decoded into plain words.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::ErpnextSettings;
use crate::http::{authorized_client, ClientSetupError};
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

/// Percent-encodes one URL path segment (everything but unreserved characters).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
        let url = format!("{}/{}", self.resource_url(doctype), encode_segment(name));
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(ErpError::Transport)?;
        match Self::decode::<Data<T>>(resp).await {
            Ok(d) => Ok(Some(d.data)),
            Err(ErpError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The current Bin rows of `items` in `warehouses`, in batches of `readback_batch` items.
    pub async fn bins(
        &self,
        items: &[String],
        warehouses: &[String],
    ) -> Result<Vec<BinRow>, ErpError> {
        let mut rows = Vec::new();
        for chunk in items.chunks(self.readback_batch.max(1)) {
            let filters =
                serde_json::json!([["item_code", "in", chunk], ["warehouse", "in", warehouses],]);
            rows.extend(
                self.list_all::<BinRow>("Bin", &BinRow::FIELDS, &filters)
                    .await?,
            );
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
