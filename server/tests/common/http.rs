//! HTTP over a real socket with hyper's client: what a browser or `curl` would send.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub struct Http {
    addr: std::net::SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A response body as JSON, or the text itself as a JSON string when it is not JSON.
pub fn json_or_text(body: String) -> Value {
    serde_json::from_str(&body).unwrap_or(Value::String(body))
}

impl Http {
    pub fn new(addr: std::net::SocketAddr) -> Self {
        // No idle connections: every request has its own, as a fresh `curl` would, so that a
        // graceful stop never waits for the test's pool.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http();
        Http { addr, client }
    }

    async fn send(
        &self,
        req: hyper::Request<Full<Bytes>>,
    ) -> Result<(u16, String), hyper_util::client::legacy::Error> {
        let resp = self.client.request(req).await?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_else(|e| panic!("reading a response body from {}: {e}", self.addr));
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    fn build(&self, method: &str, path: &str) -> hyper::http::request::Builder {
        hyper::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
    }

    /// Any request; `token` goes in `Authorization: Bearer`, `body` is sent as JSON.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut b = self.build(method, path).header(CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            b = b.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = b
            .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
            .unwrap();
        self.send(req)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} on {}: {e:?}", self.addr))
    }

    /// A request with a JSON body (or none), answered as JSON (or text as a JSON string).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let (status, text) = self.request(method, path, token, body.as_deref()).await;
        (status, json_or_text(text))
    }

    /// The status of a GET, or 0 while nothing answers on the socket.
    pub async fn get_status(&self, path: &str) -> u16 {
        let req = self.build("GET", path).body(Full::default()).unwrap();
        self.send(req).await.map(|(s, _)| s).unwrap_or(0)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        self.request("GET", path, token, None).await
    }

    /// A GET that must answer 200 with JSON.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let (st, body) = self.get(path, Some(token)).await;
        assert_eq!(st, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let (s, b) = self.request("POST", path, token, Some(body)).await;
        (s, json_or_text(b))
    }

    /// A WebSocket upgrade request that the server must refuse: its status and JSON body (read
    /// whole, which a WebSocket client does not promise). An accepted upgrade fails the test.
    pub async fn refused_upgrade(&self, path: &str) -> (u16, Value) {
        let req = self
            .build("GET", path)
            .header(CONNECTION, "Upgrade")
            .header(UPGRADE, "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(Full::default())
            .unwrap();
        let resp = self
            .client
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("upgrade {path}: {e:?}"));
        let status = resp.status().as_u16();
        assert_ne!(status, 101, "upgrade {path} was accepted");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, json_or_text(String::from_utf8_lossy(&body).into_owned()))
    }
}
