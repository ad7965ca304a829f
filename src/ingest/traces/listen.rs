//! `--otlp-listen ADDR`: an OTLP receiver for traces, as a Collector's `otlp` and
//! `otlphttp` exporters (and the SDKs' exporters) send them, on one address:
//!
//! - OTLP/gRPC: opentelemetry-proto's generated `TraceServiceServer` on tonic (gzip
//!   accepted);
//! - OTLP/HTTP: `POST /v1/traces` with a protobuf (`application/x-protobuf`) or JSON
//!   (`application/json`) body, plain or `Content-Encoding: gzip`.
//!
//! Both run on one axum router (HTTP/1.1 and HTTP/2 without TLS, as the exporters'
//! `insecure` settings speak). Each request is decoded here and queued
//! (`receive::QueueSender`); the reading thread converts it as it converts a file's.
//! A request that does not decode is answered with OTLP's error (gRPC
//! `INVALID_ARGUMENT`; HTTP 400 with a `google.rpc.Status` body) and counted; a full
//! queue with an `ExportTracePartialSuccess` counting the spans rejected.

use std::io::Read as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::receive::{Protocol, QueueSender};

/// Largest request taken, encoded or decompressed (the Collector's exporters send
/// batches of a few MB; gRPC's own default bound is 4 MiB).
pub const MAX_REQUEST_BYTES: usize = 16 << 20;
/// Requests decoded at once; more wait for their turn (their bodies stay in the
/// socket), so that memory holds at most this many bodies of `MAX_REQUEST_BYTES`.
const MAX_IN_FLIGHT: usize = 8;
/// How long stopping waits for requests in flight before it closes the connections.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The gRPC `TraceService`: every request is queued as it is.
struct Grpc(QueueSender);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        let bytes = request.encoded_len() as u64;
        let rejected = self.0.offer(request.resource_spans, bytes, Protocol::Grpc);
        Ok(tonic::Response::new(response(rejected)))
    }
}

/// The answer to an export: empty, or a partial success naming the spans refused.
fn response(rejected: u64) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message: format!(
                "linkrank's queue of received spans is full: {rejected} spans rejected"
            ),
        }),
    }
}

/// tonic answers a request body that does not decode (or decompress) with INTERNAL, as
/// gRPC's status-code guide has it for parse errors; OTLP asks for INVALID_ARGUMENT
/// (not retryable). The service itself never fails, so every INTERNAL here is one.
async fn invalid_argument(State(queue): State<QueueSender>, mut res: Response) -> Response {
    let headers = res.headers_mut();
    if headers.get("grpc-status").is_some_and(|s| s == "13") {
        headers.insert("grpc-status", HeaderValue::from_static("3"));
        queue.bad_request();
    }
    res
}

/// The body of `POST /v1/traces`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the body of OTLP/HTTP's error responses (no details are sent).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// gRPC's INVALID_ARGUMENT, the code of every error answered here.
const INVALID_ARGUMENT: i32 = 3;

fn status_response(http: StatusCode, encoding: Encoding, message: String) -> Response {
    let status = RpcStatus {
        code: INVALID_ARGUMENT,
        message,
    };
    match encoding {
        Encoding::Protobuf => (
            http,
            [(CONTENT_TYPE, "application/x-protobuf")],
            status.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => (
            http,
            [(CONTENT_TYPE, "application/json")],
            serde_json::json!({"code": status.code, "message": status.message}).to_string(),
        )
            .into_response(),
    }
}

/// `POST /v1/traces`.
async fn http_export(State(queue): State<QueueSender>, headers: HeaderMap, body: Body) -> Response {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    let encoding = match media {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        _ => {
            queue.bad_request();
            return status_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Encoding::Json,
                "the body must be application/x-protobuf or application/json".into(),
            );
        }
    };
    let bad = |http: StatusCode, message: String| {
        queue.bad_request();
        status_response(http, encoding, message)
    };
    let raw = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return bad(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {MAX_REQUEST_BYTES} bytes, or was cut short"),
            )
        }
    };
    let body = match decompress(&headers, raw) {
        Ok(b) => b,
        Err((http, message)) => return bad(http, message),
    };
    let request = match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body.as_ref())
            .map_err(|e| format!("not an OTLP ExportTraceServiceRequest: {e}")),
        // The reading the JSON trace files get (base64 ids too).
        Encoding::Json => super::otlp::json_request(&body).map_err(|e| {
            // serde's message may quote a value of the body: only where it failed.
            format!(
                "not an OTLP/JSON ExportTraceServiceRequest (line {} column {})",
                e.line(),
                e.column()
            )
        }),
    };
    let request = match request {
        Ok(r) => r,
        Err(message) => return bad(StatusCode::BAD_REQUEST, message),
    };
    let rejected = queue.offer(request.resource_spans, body.len() as u64, Protocol::Http);
    let answer = response(rejected);
    match encoding {
        Encoding::Protobuf => (
            [(CONTENT_TYPE, "application/x-protobuf")],
            answer.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => (
            [(CONTENT_TYPE, "application/json")],
            serde_json::to_string(&answer).unwrap_or_else(|_| "{}".into()),
        )
            .into_response(),
    }
}

/// The body as sent, or gunzipped (bounded: a small gzip body may inflate to anything).
fn decompress(headers: &HeaderMap, raw: Bytes) -> Result<Bytes, (StatusCode, String)> {
    let coding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match coding.as_str() {
        "" | "identity" => Ok(raw),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(raw.as_ref())
                .take(MAX_REQUEST_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| (StatusCode::BAD_REQUEST, format!("gzip body: {e}")))?;
            if out.len() > MAX_REQUEST_BYTES {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body inflates to over {MAX_REQUEST_BYTES} bytes"),
                ));
            }
            Ok(out.into())
        }
        other => Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {other:?} is not read (gzip is)"),
        )),
    }
}

/// A running receiver; `stop` ends it.
pub struct Listener {
    /// The address bound (the port the system chose for `:0`).
    pub local_addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `addr` and serves OTLP/gRPC and OTLP/HTTP on it, on the current runtime.
pub async fn listen(addr: SocketAddr, queue: QueueSender) -> std::io::Result<Listener> {
    let tcp = tokio::net::TcpListener::bind(addr).await?;
    let local_addr = tcp.local_addr()?;
    let grpc = TraceServiceServer::new(Grpc(queue.clone()))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let grpc = tonic::service::Routes::new(grpc)
        .prepare()
        .into_axum_router()
        .layer(axum::middleware::map_response_with_state(
            queue.clone(),
            invalid_argument,
        ));
    let app = Router::new()
        .route("/v1/traces", post(http_export))
        .with_state(queue)
        .merge(grpc)
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_IN_FLIGHT,
        ));
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(tcp, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Listener {
        local_addr,
        shutdown,
        task,
    })
}

impl Listener {
    /// Stops accepting, lets the requests in flight finish (at most a few seconds),
    /// then drops the connections; the queue's senders go with them.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let mut task = self.task;
        if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
    }
}
