//! A fault-injecting HTTP proxy in front of moto: every request is passed on
//! unchanged, except those the test's rule picks, which get the AWS error the
//! rule names instead. Point one service at it (`AWS_ENDPOINT_URL_SNS` in a
//! function's environment, or `endpoint_url` on one client) to make that
//! service fail exactly where a test needs it while everything else is real.
//!
//! Blocking sockets on threads, one request per connection (`Connection:
//! close` both ways), so it needs no runtime and works beside any test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One request as the proxy saw it.
pub struct ProxiedRequest<'a> {
    /// 0 for the first request the proxy received, and so on.
    pub index: usize,
    /// The request line and headers.
    pub head: &'a str,
    pub body: &'a [u8],
}

impl ProxiedRequest<'_> {
    /// Whether this is the query-protocol call `action` (`Action=Publish`).
    pub fn is_action(&self, action: &str) -> bool {
        let body = String::from_utf8_lossy(self.body);
        body.split('&').any(|kv| kv == format!("Action={action}"))
    }

    /// Whether the (form-encoded) body contains `marker`; keep markers to
    /// letters, digits and `-` so encoding does not hide them.
    pub fn body_contains(&self, marker: &str) -> bool {
        String::from_utf8_lossy(self.body).contains(marker)
    }
}

/// The AWS error a rule answers with: HTTP status and error code.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub status: u16,
    pub code: &'static str,
}

type Rule = dyn Fn(&ProxiedRequest<'_>) -> Option<Fault> + Send + Sync;

/// The running proxy; `url` is `http://127.0.0.1:PORT`.
pub struct FaultProxy {
    pub url: String,
    requests: Arc<AtomicUsize>,
    injected: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// Proxies to `upstream` (moto's `http://host:port`), answering a request
    /// with the fault `rule` returns for it, if any.
    pub fn start(
        upstream: &str,
        rule: impl Fn(&ProxiedRequest<'_>) -> Option<Fault> + Send + Sync + 'static,
    ) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let (requests, injected) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let rule: Arc<Rule> = Arc::new(rule);
        let (counter, faults) = (requests.clone(), injected.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(client) = stream else { continue };
                let (rule, upstream) = (rule.clone(), upstream.clone());
                let (counter, faults) = (counter.clone(), faults.clone());
                std::thread::spawn(move || {
                    serve(client, &upstream, &*rule, &counter, &faults);
                });
            }
        });
        FaultProxy {
            url,
            requests,
            injected,
        }
    }

    /// Requests received so far, faulted or passed on.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests answered with a fault so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }
}

fn serve(
    mut client: TcpStream,
    upstream: &str,
    rule: &Rule,
    counter: &AtomicUsize,
    faults: &AtomicUsize,
) {
    let Some((head, body)) = read_request(&mut client) else {
        return;
    };
    let request = ProxiedRequest {
        index: counter.fetch_add(1, Ordering::SeqCst),
        head: &head,
        body: &body,
    };
    let response = match rule(&request) {
        Some(fault) => {
            faults.fetch_add(1, Ordering::SeqCst);
            error_response(fault)
        }
        None => forward(upstream, &head, &body),
    };
    let _ = client.write_all(&response);
}

/// Reads one HTTP/1.1 request: head and `Content-Length` body.
fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// An AWS query-protocol error, as SNS words it.
fn error_response(fault: Fault) -> Vec<u8> {
    let kind = if fault.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    let body = format!(
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>{kind}</Type><Code>{}</Code><Message>injected by the test's fault proxy</Message></Error><RequestId>fault</RequestId></ErrorResponse>",
        fault.code
    );
    format!(
        "HTTP/1.1 {} Injected\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        fault.status,
        body.len()
    )
    .into_bytes()
}

/// Sends the request on to moto with `Connection: close`, returns its answer.
fn forward(upstream: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    let mut request = lines.join("\r\n").into_bytes();
    request.extend_from_slice(b"\r\n\r\n");
    request.extend_from_slice(body);
    let mut out = Vec::new();
    if let Ok(mut up) = TcpStream::connect(upstream) {
        let _ = up.set_read_timeout(Some(Duration::from_secs(10)));
        if up.write_all(&request).is_ok() {
            let _ = up.read_to_end(&mut out);
        }
    }
    out
}
