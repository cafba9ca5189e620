//! varied-load: a closed-loop load generator for calls that need a distinct body per request.
//!
//! h2load sends one `-d` body to every request, and for gRPC it counts HTTP 200 as success although
//! a gRPC error is an HTTP 200 whose trailers carry `grpc-status`. wrk takes a body per request from
//! a Lua script but has no warm-up phase and whole-second windows, so a slow call at high
//! concurrency starts its window with an empty pipeline. This tool does what h2load does
//! (`-c N -m 1`: N connections, one call in flight on each; a warm-up on the same connections, then
//! a measured window; calls in flight at its end are dropped) with a body per request, taken in
//! order from a file of length-prefixed messages (each used once, or round-robin with `--cycle`):
//!
//! - gRPC (default): HTTP/2 POST with `content-type: application/grpc`; the status is the
//!   `grpc-status` of the trailers (or of the headers of a trailers-only reply); 0 is success.
//! - REST (`--h1`): HTTP/1.1 keep-alive POST of the message as `application/json`; 2xx is success.
//!
//! It prints one JSON object: counts, statuses, throughput and latency percentiles of the calls that
//! completed inside the measurement window.
//!
//! Usage: varied-load [--h1] -c 16 -D 3 --warm-up 0.5 --frames bodies.bin [--cycle] [-n MAX]
//!        [-H 'authorization: Bearer …'] http://127.0.0.1:50051/arcana.v1.AuthService/Refresh

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Options {
    uri: Uri,
    frames_path: String,
    connections: usize,
    duration: Duration,
    warm_up: Duration,
    max_requests: Option<usize>,
    cycle: bool,
    http1: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// What every connection shares (one thread: plain cells suffice).
struct Shared {
    frames: Vec<Bytes>,
    next: Cell<usize>,
    cycle: bool,
    max_requests: Option<usize>,
    started: Cell<usize>,
    measure_from: Instant,
    measure_until: Instant,
    latencies_us: RefCell<Vec<u64>>,
    statuses: RefCell<BTreeMap<String, u64>>,
    ok: Cell<u64>,
    transport_errors: Cell<u64>,
    exhausted: Cell<bool>,
    first_error: RefCell<Option<String>>,
}

impl Shared {
    fn take_frame(&self) -> Option<Bytes> {
        if let Some(max) = self.max_requests {
            if self.started.get() >= max {
                return None;
            }
        }
        let index = self.next.get();
        let frame = if self.cycle {
            self.frames.get(index % self.frames.len())
        } else {
            self.frames.get(index)
        };
        if frame.is_none() {
            self.exhausted.set(true);
        }
        self.next.set(index + 1);
        self.started.set(self.started.get() + 1);
        frame.cloned()
    }

    fn record(&self, finished: Instant, latency: Duration, outcome: Outcome) {
        if finished < self.measure_from || finished > self.measure_until {
            return;
        }
        self.latencies_us
            .borrow_mut()
            .push(latency.as_micros() as u64);
        if outcome.ok {
            self.ok.set(self.ok.get() + 1);
        }
        *self
            .statuses
            .borrow_mut()
            .entry(outcome.status)
            .or_insert(0) += 1;
    }

    fn fail(&self, error: String) {
        self.transport_errors.set(self.transport_errors.get() + 1);
        self.first_error.borrow_mut().get_or_insert(error);
    }
}

struct Outcome {
    status: String,
    ok: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut uri = None;
    let mut frames_path = None;
    let (mut connections, mut duration, mut warm_up) = (1usize, 3.0f64, 0.0f64);
    let (mut max_requests, mut cycle, mut http1, mut headers) = (None, false, false, Vec::new());
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-c" => connections = value("-c")?.parse().map_err(|e| format!("-c: {e}"))?,
            "-D" => duration = value("-D")?.parse().map_err(|e| format!("-D: {e}"))?,
            "--warm-up" => {
                warm_up = value("--warm-up")?
                    .parse()
                    .map_err(|e| format!("--warm-up: {e}"))?
            }
            "-n" => max_requests = Some(value("-n")?.parse().map_err(|e| format!("-n: {e}"))?),
            "--frames" => frames_path = Some(value("--frames")?),
            "--cycle" => cycle = true,
            "--h1" => http1 = true,
            "-H" => {
                let raw = value("-H")?;
                let (name, val) = raw
                    .split_once(':')
                    .ok_or(format!("-H {raw:?}: expected 'name: value'"))?;
                let name = HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
                    .map_err(|e| format!("-H {name:?}: {e}"))?;
                let val =
                    HeaderValue::from_str(val.trim()).map_err(|e| format!("-H value: {e}"))?;
                headers.push((name, val));
            }
            other if other.starts_with("http://") => {
                uri = Some(other.parse::<Uri>().map_err(|e| format!("url: {e}"))?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if connections == 0 || duration <= 0.0 || warm_up < 0.0 {
        return Err("-c must be >= 1, -D > 0 and --warm-up >= 0".into());
    }
    Ok(Options {
        uri: uri.ok_or("the target URL (http://host:port/path) is required")?,
        frames_path: frames_path.ok_or("--frames is required")?,
        connections,
        duration: Duration::from_secs_f64(duration),
        warm_up: Duration::from_secs_f64(warm_up),
        max_requests,
        cycle,
        http1,
        headers,
    })
}

/// Split a file of concatenated length-prefixed messages (1 flag byte, 4-byte big-endian length,
/// the message): gRPC's own framing, sent as is over HTTP/2; for HTTP/1.1 the prefix is dropped.
fn read_frames(path: &str, http1: bool) -> Result<Vec<Bytes>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let mut frames = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let header = data
            .get(at..at + 5)
            .ok_or(format!("{path}: truncated frame header at byte {at}"))?;
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let end = at + 5 + length;
        let frame = data
            .get(if http1 { at + 5 } else { at }..end)
            .ok_or(format!("{path}: truncated frame at byte {at}"))?;
        frames.push(Bytes::copy_from_slice(frame));
        at = end;
    }
    if frames.is_empty() {
        return Err(format!("{path}: no frames"));
    }
    Ok(frames)
}

async fn grpc_call(
    client: &h2::client::SendRequest<Bytes>,
    options: &Options,
    frame: Bytes,
) -> Result<Outcome, String> {
    let mut builder = Request::post(options.uri.clone())
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in &options.headers {
        builder = builder.header(name, value);
    }
    let request = builder.body(()).map_err(|e| e.to_string())?;
    let mut ready = client.clone().ready().await.map_err(|e| e.to_string())?;
    let (response, mut send) = ready
        .send_request(request, false)
        .map_err(|e| e.to_string())?;
    send.send_data(frame, true).map_err(|e| e.to_string())?;
    let response = response.await.map_err(|e| e.to_string())?;
    let (parts, mut body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        return Ok(Outcome {
            status: format!("http-{}", parts.status.as_u16()),
            ok: false,
        });
    }
    // A trailers-only reply (most errors) carries grpc-status in its headers.
    let mut status = parts
        .headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    if let Some(trailers) = body.trailers().await.map_err(|e| e.to_string())? {
        if let Some(value) = trailers.get("grpc-status").and_then(|v| v.to_str().ok()) {
            status = Some(value.to_owned());
        }
    }
    let status = status.unwrap_or_else(|| "missing".into());
    let ok = status == "0";
    Ok(Outcome { status, ok })
}

/// One HTTP/1.1 keep-alive connection: requests written whole, responses read by Content-Length.
struct Http1 {
    stream: TcpStream,
    head: Vec<u8>,
    buffer: Vec<u8>,
}

impl Http1 {
    fn new(stream: TcpStream, options: &Options, authority: &str) -> Self {
        let path = options
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n"
        );
        for (name, value) in &options.headers {
            if name.as_str() != "content-type" {
                head.push_str(&format!(
                    "{}: {}\r\n",
                    name.as_str(),
                    value.to_str().unwrap_or("")
                ));
            }
        }
        Http1 {
            stream,
            head: head.into_bytes(),
            buffer: Vec::with_capacity(16 * 1024),
        }
    }

    async fn call(&mut self, body: Bytes) -> Result<Outcome, String> {
        let mut request = self.head.clone();
        request.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(&body);
        self.stream
            .write_all(&request)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            if let Some((status, total)) = parse_response(&self.buffer)? {
                if self.buffer.len() >= total {
                    self.buffer.drain(..total);
                    return Ok(Outcome {
                        ok: (200..300).contains(&status),
                        status: status.to_string(),
                    });
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| e.to_string())?;
            if read == 0 {
                return Err("connection closed by the server".into());
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

/// (status, length of head + body) once the head is complete; a chunked body is not supported.
fn parse_response(buffer: &[u8]) -> Result<Option<(u16, usize)>, String> {
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buffer[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or("malformed status line")?;
    let mut length = 0usize;
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().map_err(|_| "bad content-length")?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked responses are not supported".into());
        }
    }
    Ok(Some((status, end + 4 + length)))
}

enum Conn {
    Grpc(h2::client::SendRequest<Bytes>),
    Rest(Box<Http1>),
}

async fn open(options: &Options) -> Result<Conn, String> {
    let authority = options
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let tcp = TcpStream::connect(&authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if options.http1 {
        return Ok(Conn::Rest(Box::new(Http1::new(tcp, options, &authority))));
    }
    let (client, driver) = h2::client::handshake(tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::task::spawn_local(async move {
        let _ = driver.await;
    });
    Ok(Conn::Grpc(client))
}

async fn connection(options: Rc<Options>, shared: Rc<Shared>) {
    let mut conn = match open(&options).await {
        Ok(conn) => conn,
        Err(error) => return shared.fail(error),
    };
    // A call still in flight when the window closes is dropped, as h2load stops its clients.
    let deadline = tokio::time::Instant::from_std(shared.measure_until);
    while Instant::now() < shared.measure_until {
        let Some(frame) = shared.take_frame() else {
            break;
        };
        let start = Instant::now();
        let call = async {
            match &mut conn {
                Conn::Grpc(client) => grpc_call(client, &options, frame).await,
                Conn::Rest(http1) => http1.call(frame).await,
            }
        };
        match tokio::time::timeout_at(deadline, call).await {
            Err(_elapsed) => break,
            Ok(Ok(outcome)) => shared.record(Instant::now(), start.elapsed(), outcome),
            Ok(Err(error)) => {
                shared.fail(error);
                break;
            }
        }
    }
}

fn percentile(sorted: &[u64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn json_number(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.3}")
    } else {
        "null".into()
    }
}

fn report(shared: &Shared, window: Duration) -> String {
    let mut latencies = shared.latencies_us.borrow().clone();
    latencies.sort_unstable();
    let statuses = shared.statuses.borrow();
    let ok = shared.ok.get();
    let completed = latencies.len() as u64;
    let mean = if latencies.is_empty() {
        f64::NAN
    } else {
        latencies.iter().sum::<u64>() as f64 / latencies.len() as f64 / 1000.0
    };
    let status_json: Vec<String> = statuses
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    let first_error = shared
        .first_error
        .borrow()
        .clone()
        .unwrap_or_default()
        .replace(['"', '\\'], "'");
    format!(
        "{{\"completed\": {completed}, \"ok\": {ok}, \"errors\": {errors}, \"transport_errors\": {transport}, \
         \"statuses\": {{{statuses}}}, \"duration_s\": {duration}, \"rps\": {rps}, \"ok_rps\": {ok_rps}, \
         \"mean_ms\": {mean}, \"p50_ms\": {p50}, \"p90_ms\": {p90}, \"p99_ms\": {p99}, \"max_ms\": {max}, \
         \"frames\": {frames}, \"started\": {started}, \"exhausted\": {exhausted}, \"first_error\": \"{first_error}\"}}",
        errors = completed - ok + shared.transport_errors.get(),
        transport = shared.transport_errors.get(),
        statuses = status_json.join(", "),
        duration = json_number(window.as_secs_f64()),
        rps = json_number(completed as f64 / window.as_secs_f64()),
        ok_rps = json_number(ok as f64 / window.as_secs_f64()),
        mean = json_number(mean),
        p50 = json_number(percentile(&latencies, 0.50)),
        p90 = json_number(percentile(&latencies, 0.90)),
        p99 = json_number(percentile(&latencies, 0.99)),
        max = json_number(percentile(&latencies, 1.0)),
        frames = shared.frames.len(),
        started = shared.started.get(),
        exhausted = shared.exhausted.get(),
    )
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => Rc::new(options),
        Err(message) => {
            eprintln!("varied-load: {message}");
            return ExitCode::from(2);
        }
    };
    let frames = match read_frames(&options.frames_path, options.http1) {
        Ok(frames) => frames,
        Err(message) => {
            eprintln!("varied-load: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("varied-load: runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let start = Instant::now();
    // With -n (a sample check) there is no time window: every call counts.
    let (from, until) = if options.max_requests.is_some() {
        (start, start + Duration::from_secs(3600))
    } else {
        (
            start + options.warm_up,
            start + options.warm_up + options.duration,
        )
    };
    let shared = Rc::new(Shared {
        frames,
        next: Cell::new(0),
        cycle: options.cycle,
        max_requests: options.max_requests,
        started: Cell::new(0),
        measure_from: from,
        measure_until: until,
        latencies_us: RefCell::new(Vec::new()),
        statuses: RefCell::new(BTreeMap::new()),
        ok: Cell::new(0),
        transport_errors: Cell::new(0),
        exhausted: Cell::new(false),
        first_error: RefCell::new(None),
    });
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let workers: Vec<_> = (0..options.connections)
            .map(|_| tokio::task::spawn_local(connection(options.clone(), shared.clone())))
            .collect();
        for worker in workers {
            let _ = worker.await;
        }
    });
    let window = if options.max_requests.is_some() {
        start.elapsed()
    } else {
        options.duration
    };
    println!("{}", report(&shared, window));
    ExitCode::SUCCESS
}
