//! Webhook conditions as the emulator evaluates them. Frappe runs a Webhook's `condition` with
//! `frappe.safe_eval(condition, eval_locals={"doc": doc, ...})` for every document event; the
//! emulator knows the part of Python the shipped documents use: `doc.field`, `doc.get("f")`,
//! `doc.has_value_changed("f")` (true when there is no saved version yet),
//! `doc.get_doc_before_save()`, `and`, `or`, `not` and parentheses, with Python's truthiness.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Dot,
    Open,
    Close,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '.' => {
                chars.next();
                out.push(Token::Dot);
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' | '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(other) => s.push(other),
                        None => return Err("a string is not closed".into()),
                    }
                }
                out.push(Token::Str(s));
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut s = String::new();
                while let Some(&d) = chars
                    .peek()
                    .filter(|d| d.is_ascii_alphanumeric() || **d == '_')
                {
                    s.push(d);
                    chars.next();
                }
                out.push(Token::Ident(s));
            }
            other => return Err(format!("unexpected `{other}`")),
        }
    }
    Ok(out)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

struct Eval<'a> {
    tokens: Vec<Token>,
    pos: usize,
    doc: &'a Value,
    before: Option<&'a Value>,
}

impl Eval<'_> {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Ident(w)) if w == word)
    }

    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            let rhs = self.and()?;
            v = v || rhs;
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.not()?;
        while self.peek_word("and") {
            self.pos += 1;
            let rhs = self.not()?;
            v = v && rhs;
        }
        Ok(v)
    }

    fn not(&mut self) -> Result<bool, String> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(!self.not()?);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<bool, String> {
        match self.next() {
            Some(Token::Open) => {
                let v = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(v),
                    _ => Err("a parenthesis is not closed".into()),
                }
            }
            Some(Token::Ident(w)) if w == "doc" => self.on_doc(),
            other => Err(format!("cannot read {other:?}")),
        }
    }

    fn on_doc(&mut self) -> Result<bool, String> {
        if self.next() != Some(Token::Dot) {
            return Err("expected `doc.`".into());
        }
        let Some(Token::Ident(name)) = self.next() else {
            return Err("expected a name after `doc.`".into());
        };
        if self.tokens.get(self.pos) != Some(&Token::Open) {
            return Ok(truthy(&self.doc[name.as_str()]));
        }
        self.pos += 1;
        let arg = match self.next() {
            Some(Token::Str(s)) => {
                if self.next() != Some(Token::Close) {
                    return Err(format!("`{name}` takes one argument"));
                }
                Some(s)
            }
            Some(Token::Close) => None,
            other => return Err(format!("cannot read the arguments of `{name}`: {other:?}")),
        };
        match (name.as_str(), arg) {
            ("get", Some(f)) => Ok(truthy(&self.doc[f.as_str()])),
            ("has_value_changed", Some(f)) => Ok(match self.before {
                None => true,
                Some(b) => b[f.as_str()] != self.doc[f.as_str()],
            }),
            ("get_doc_before_save", None) => Ok(self.before.is_some()),
            (other, _) => Err(format!("the emulator does not know `doc.{other}(...)`")),
        }
    }
}

/// Whether `condition` holds for `doc` (`before`: the version saved before this save, None for
/// a new document). An empty condition always holds.
pub fn holds(condition: &str, doc: &Value, before: Option<&Value>) -> Result<bool, String> {
    if condition.trim().is_empty() {
        return Ok(true);
    }
    let mut e = Eval {
        tokens: tokens(condition)?,
        pos: 0,
        doc,
        before,
    };
    let v = e.or()?;
    if e.pos != e.tokens.len() {
        return Err("unexpected text after the condition".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_shipped_forms_evaluate_as_python_would() {
        let sku = r#"doc.has_value_changed("shop_sku") and (doc.get("shop_sku") or doc.get_doc_before_save())"#;
        let new_without = json!({"shop_sku": null});
        let new_with = json!({"shop_sku": "S-1"});
        assert!(!holds(sku, &new_without, None).expect("eval"));
        assert!(holds(sku, &new_with, None).expect("eval"));
        assert!(!holds(sku, &new_with, Some(&new_with)).expect("eval"));
        assert!(
            holds(sku, &new_without, Some(&new_with)).expect("eval"),
            "cleared"
        );
        assert!(holds("doc.update_stock", &json!({"update_stock": 1}), None).expect("eval"));
        assert!(!holds("doc.update_stock", &json!({"update_stock": 0}), None).expect("eval"));
        assert!(holds("not doc.x", &json!({}), None).expect("eval"));
        assert!(holds("", &json!({}), None).expect("eval"));
        assert!(holds("doc.a or", &json!({}), None).is_err());
        assert!(holds("import os", &json!({}), None).is_err());
    }
}
