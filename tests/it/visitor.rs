//! `Visitor`: a browser-like HTTP client for the web app's forms. It keeps
//! cookies, follows no redirects (tests look at each one), and sends the CSRF
//! token from its cookie the way a page's hidden field would.

use std::collections::BTreeMap;

use reqwest::{StatusCode, header};

pub struct Visitor {
    pub base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The page's text contains `needle` (HTML-escaped text as served).
    #[track_caller]
    pub fn shows(&self, needle: &str) -> &Self {
        assert!(
            self.body.contains(needle),
            "expected the page ({}) to contain {needle:?}:\n{}",
            self.status,
            self.body
        );
        self
    }

    #[track_caller]
    pub fn lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.body.contains(needle),
            "expected the page ({}) not to contain {needle:?}:\n{}",
            self.status,
            self.body
        );
        self
    }

    /// The text of the error box, if any.
    pub fn error(&self) -> Option<String> {
        let start = self.body.find("role=\"alert\"")?;
        let rest = &self.body[start..];
        let p = rest.find("<p>")? + 3;
        let end = rest[p..].find("</p>")?;
        Some(rest[p..p + end].to_string())
    }

    /// The `value` of the input with this `id`.
    pub fn input_value(&self, id: &str) -> Option<String> {
        let at = self.body.find(&format!("id=\"{id}\""))?;
        let tag_start = self.body[..at].rfind('<')?;
        let tag_end = at + self.body[at..].find('>')?;
        let tag = &self.body[tag_start..tag_end];
        let v = tag.find("value=\"")? + 7;
        let end = tag[v..].find('"')?;
        Some(tag[v..v + end].to_string())
    }
}

impl Visitor {
    pub fn new(base: &str) -> Self {
        Visitor {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, headers: &header::HeaderMap) {
        for v in headers.get_all(header::SET_COOKIE) {
            let Ok(s) = v.to_str() else { continue };
            let first = s.split(';').next().unwrap_or_default();
            if let Some((k, v)) = first.split_once('=') {
                let removed = s.to_ascii_lowercase().contains("max-age=0");
                if removed || v.is_empty() {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
    }

    /// The CSRF token the pages put in their forms.
    pub fn csrf(&self) -> String {
        self.cookies
            .iter()
            .find(|(k, _)| k.ends_with("kindred_csrf"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    pub fn signed_in(&self) -> bool {
        self.cookies.keys().any(|k| k.ends_with("kindred_session"))
    }

    async fn finish(&mut self, res: reqwest::Response) -> Page {
        let status = res.status();
        let headers = res.headers().clone();
        self.keep_cookies(&headers);
        let body = res.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header(header::ACCEPT, "text/html")
            .header(header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.finish(res).await
    }

    /// Submit a form as the page would: with this visitor's CSRF token. A
    /// first visit fetches a page to get one.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        if self.csrf().is_empty() {
            self.get("/signin").await;
        }
        let csrf = self.csrf();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Submit exactly these fields (no CSRF token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::ACCEPT, "text/html")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, self.cookie_header())
            .body(body)
            .send()
            .await
            .expect("POST");
        self.finish(res).await
    }

    /// Sign in through the form; panics unless it works.
    pub async fn sign_in(&mut self, username: &str, password: &str) {
        let page = self
            .post(
                "/signin",
                &[
                    ("username", username),
                    ("password", password),
                    ("next", "/"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert!(self.signed_in());
    }
}
