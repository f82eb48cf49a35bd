//! A local HTTP/1.1 server standing in for Slack and PagerDuty in the tests:
//! it records every request and answers as the test scripts it. Only the
//! third-party services get stand-ins; AWS is moto, and Vigil's own code runs
//! for real (the notifier and its HTTP client post here over loopback).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer: status, content type, extra headers, body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Answer {
    /// A JSON answer (the Slack Web API, PagerDuty).
    pub fn json(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type: "application/json; charset=utf-8",
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A plain-text answer (a Slack incoming webhook says `ok`).
    pub fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            content_type: "text/plain",
            ..Answer::json(status, body)
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Answer {
        self.headers.push((name, value.into()));
        self
    }
}

type Responder = dyn Fn(&Received) -> Answer + Send + Sync;

/// The server: `base` is `http://127.0.0.1:PORT`.
pub struct StandIn {
    pub base: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl StandIn {
    /// Answers each request with `respond`.
    pub async fn start(respond: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Responder> = Arc::new(respond);
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, respond) = (log.clone(), respond.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, log, respond).await;
                });
            }
        });
        StandIn { base, received }
    }

    /// Answers from `script` in order, then with `otherwise` once it runs out.
    pub async fn scripted(
        script: Vec<Answer>,
        otherwise: impl Fn(&Received) -> Answer + Send + Sync + 'static,
    ) -> StandIn {
        let script = Mutex::new(VecDeque::from(script));
        StandIn::start(move |r| {
            let next = script.lock().unwrap().pop_front();
            next.unwrap_or_else(|| otherwise(r))
        })
        .await
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.received().into_iter().map(|r| r.body).collect()
    }
}

async fn serve(
    mut stream: TcpStream,
    log: Arc<Mutex<Vec<Received>>>,
    respond: Arc<Responder>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .unwrap_or_default()
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..(head_end + len).min(buf.len())])
        .unwrap_or(Value::Null);
    let request = Received {
        path,
        headers,
        body,
    };
    let answer = respond(&request);
    log.lock().unwrap().push(request);
    let mut resp = format!(
        "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        answer.status,
        answer.content_type,
        answer.body.len()
    );
    for (k, v) in answer.headers {
        resp.push_str(&format!("{k}: {v}\r\n"));
    }
    resp.push_str("\r\n");
    resp.push_str(&answer.body);
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

/// A server that accepts every connection, reads what it is sent, and never
/// answers: a Slack, PagerDuty or OTLP endpoint that hangs. Connections are
/// held open until the server is dropped (with the test's runtime).
pub struct Silent {
    pub base: String,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Silent {
    pub async fn start() -> Silent {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut sink = [0u8; 8192];
                    // Read (so the client's send completes), never write.
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                    std::future::pending::<()>().await;
                });
            }
        });
        Silent { base, connections }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}
