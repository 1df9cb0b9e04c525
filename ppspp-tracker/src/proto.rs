//! PPSTP messages (RFC 7846 §3–§4) and their JSON codec.
//!
//! Every message is a JSON object with one member, `PPSPTrackerProtocol`, holding a request
//! or a response. [`Request::decode`] and [`Response::decode`] accept both the RFC's formal
//! definitions and the deviating forms its own examples use; [`Request::encode`] and
//! [`Response::encode`] always write the formal form:
//!
//! - a single object where an array is defined (`swarm_action`, `peer_addr`, `swarm_result`,
//!   `peer_info`, `stat`) is read as an array of one; arrays are written;
//! - FIND's `swarm_id` and `peer_num` are read from the `find` member (§3.3.3) or, as in the
//!   example of §4.1.2.1, from the root; they are written in `find`;
//! - integers written as strings (`"concurrent_links": "5"`, the error-code registry's
//!   `"01"`) are read as integers; integers are written as numbers;
//! - the statistics array is read from `stat` (§3.2.5) or `Stat` (§4.1.3.1); written as
//!   `stat`;
//! - a `peer_addr` without `type` or `priority` (the response example of §4.1.1.1) is read
//!   as `HOST` with priority 0; both are always written.
//!
//! Unknown members are ignored (§4.4). A body larger than [`MAX_BODY`] is a bad request.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The media type of PPSTP requests and responses (RFC 7846 §8.1).
pub const MEDIA_TYPE: &str = "application/ppsp-tracker+json";

/// The PPSTP version this crate speaks (RFC 7846 §3.2.1).
pub const VERSION: u64 = 1;

/// The largest message body decoded, in bytes. A CONNECT for a few swarms and addresses is
/// well under 4 KiB; the bound keeps a hostile body from costing more than this to parse.
pub const MAX_BODY: usize = 64 * 1024;

/// The most peers a tracker returns in one peer list: `peer_count` "should be less than 30"
/// (RFC 7846 §3.2.2).
pub const MAX_PEER_COUNT: u32 = 29;

/// The name of the root member of every message (RFC 7846 §3.4).
const ROOT: &str = "PPSPTrackerProtocol";

/// A swarm action (RFC 7846 §3.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Join the swarm.
    #[serde(rename = "JOIN")]
    Join,
    /// Leave the swarm.
    #[serde(rename = "LEAVE")]
    Leave,
}

/// How a peer takes part in a swarm (RFC 7846 §3.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PeerMode {
    /// It has the content and shares it.
    #[serde(rename = "SEEDER")]
    Seeder,
    /// It is downloading.
    #[serde(rename = "LEECH")]
    Leech,
}

/// What an advertised address is, for NAT traversal (RFC 7846 §3.2.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddrType {
    /// The address of one of the peer's interfaces.
    #[default]
    #[serde(rename = "HOST")]
    Host,
    /// The address the tracker saw the peer's request come from.
    #[serde(rename = "REFLEXIVE")]
    Reflexive,
    /// A relay's address.
    #[serde(rename = "PROXY")]
    Proxy,
}

/// The outcome of a request or of one swarm action (RFC 7846 §3.3.2, §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseType {
    /// `0x00`: processed.
    Successful,
    /// `0x01`: not processed; the error code says why.
    Failed,
}

impl ResponseType {
    fn code(self) -> u64 {
        match self {
            Self::Successful => 0,
            Self::Failed => 1,
        }
    }
}

/// The PPSTP error codes (RFC 7846 §4.3, §8.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorCode {
    /// 00: no error.
    NoError,
    /// 01: the message is incorrectly formed.
    BadRequest,
    /// 02: a protocol version the receiver does not support.
    UnsupportedVersion,
    /// 03: the request is not allowed in the peer's state (for example a FIND from a peer
    /// that never registered).
    Forbidden,
    /// 04: an unexpected condition at the tracker.
    InternalError,
    /// 05: the tracker is overloaded (here also: the source exceeded its rate limit).
    ServiceUnavailable,
    /// 06: the peer must authenticate.
    AuthenticationRequired,
}

impl ErrorCode {
    /// The registry number.
    pub fn code(self) -> u8 {
        match self {
            Self::NoError => 0,
            Self::BadRequest => 1,
            Self::UnsupportedVersion => 2,
            Self::Forbidden => 3,
            Self::InternalError => 4,
            Self::ServiceUnavailable => 5,
            Self::AuthenticationRequired => 6,
        }
    }

    /// The code with this registry number.
    pub fn from_code(n: u64) -> Option<Self> {
        Some(match n {
            0 => Self::NoError,
            1 => Self::BadRequest,
            2 => Self::UnsupportedVersion,
            3 => Self::Forbidden,
            4 => Self::InternalError,
            5 => Self::ServiceUnavailable,
            6 => Self::AuthenticationRequired,
            _ => return None,
        })
    }

    /// The HTTP status a tracker answers with. RFC 7846 carries the outcome in the body only;
    /// mapping it onto the status as well lets HTTP tooling (and caches) see failures.
    pub fn http_status(self) -> u16 {
        match self {
            Self::NoError => 200,
            Self::BadRequest | Self::UnsupportedVersion => 400,
            Self::Forbidden => 403,
            Self::InternalError => 500,
            Self::ServiceUnavailable => 503,
            Self::AuthenticationRequired => 401,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Self::NoError => "no error",
            Self::BadRequest => "bad request",
            Self::UnsupportedVersion => "unsupported version number",
            Self::Forbidden => "forbidden action",
            Self::InternalError => "internal server error",
            Self::ServiceUnavailable => "service unavailable",
            Self::AuthenticationRequired => "authentication required",
        };
        write!(f, "{:02} ({what})", self.code())
    }
}

/// The scope of a peer list asked for (RFC 7846 §3.2.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNum {
    /// The most peers wanted.
    #[serde(deserialize_with = "int")]
    pub peer_count: u64,
    /// `NO_NAT`, `STUN` or `TURN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ability_nat: Option<String>,
    /// The peer's current number of links.
    #[serde(
        default,
        deserialize_with = "opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub concurrent_links: Option<u64>,
    /// Seconds online.
    #[serde(
        default,
        deserialize_with = "opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub online_time: Option<u64>,
    /// Upload capacity in kbit/s.
    #[serde(
        default,
        deserialize_with = "opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub upload_bandwidth: Option<u64>,
}

/// One swarm action of a CONNECT (RFC 7846 §3.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmAction {
    /// The swarm (here: the swarm ID in hex).
    pub swarm_id: String,
    /// JOIN or LEAVE.
    pub action: Action,
    /// SEEDER or LEECH.
    pub peer_mode: PeerMode,
}

/// A peer's transport address with its attributes (RFC 7846 §3.2.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "PeerAddrWire", try_from = "PeerAddrWire")]
pub struct PeerAddr {
    /// The IP address.
    pub ip: IpAddr,
    /// The UDP port of its PPSPP endpoint.
    pub port: u16,
    /// Larger is preferred.
    pub priority: u64,
    /// HOST, REFLEXIVE or PROXY.
    pub addr_type: AddrType,
    /// `wireless` or `wired`.
    pub connection: Option<String>,
    /// The autonomous system number.
    pub asn: Option<String>,
    /// The peer protocol spoken (`PPSP-PP`).
    pub peer_protocol: Option<String>,
}

impl PeerAddr {
    /// A HOST address with priority 1 and the PPSPP protocol named.
    pub fn host(addr: SocketAddr) -> Self {
        Self {
            ip: addr.ip(),
            port: addr.port(),
            priority: 1,
            addr_type: AddrType::Host,
            connection: None,
            asn: None,
            peer_protocol: Some("PPSP-PP".to_owned()),
        }
    }

    /// The socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

#[derive(Serialize, Deserialize)]
struct IpWire {
    address_type: String,
    address: String,
}

#[derive(Serialize, Deserialize)]
struct PeerAddrWire {
    ip_address: IpWire,
    #[serde(deserialize_with = "int")]
    port: u64,
    #[serde(default, deserialize_with = "int")]
    priority: u64,
    #[serde(rename = "type", default)]
    addr_type: AddrType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    asn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer_protocol: Option<String>,
}

impl From<PeerAddr> for PeerAddrWire {
    fn from(a: PeerAddr) -> Self {
        Self {
            ip_address: IpWire {
                address_type: if a.ip.is_ipv4() { "ipv4" } else { "ipv6" }.to_owned(),
                // RFC 5952 text for IPv6 (what `Display` writes), dotted quad for IPv4.
                address: a.ip.to_string(),
            },
            port: u64::from(a.port),
            priority: a.priority,
            addr_type: a.addr_type,
            connection: a.connection,
            asn: a.asn,
            peer_protocol: a.peer_protocol,
        }
    }
}

impl TryFrom<PeerAddrWire> for PeerAddr {
    type Error = String;

    fn try_from(w: PeerAddrWire) -> Result<Self, String> {
        let ip: IpAddr = w
            .ip_address
            .address
            .parse()
            .map_err(|_| format!("bad address {:?}", w.ip_address.address))?;
        let kind = w.ip_address.address_type.to_ascii_lowercase();
        match (kind.as_str(), ip) {
            ("ipv4", IpAddr::V4(_)) | ("ipv6", IpAddr::V6(_)) => {}
            _ => {
                return Err(format!(
                    "address_type {:?} does not match {ip}",
                    w.ip_address.address_type
                ));
            }
        }
        let port = u16::try_from(w.port).map_err(|_| format!("port {} out of range", w.port))?;
        Ok(Self {
            ip,
            port,
            priority: w.priority,
            addr_type: w.addr_type,
            connection: w.connection,
            asn: w.asn,
            peer_protocol: w.peer_protocol,
        })
    }
}

/// A peer in a peer list (RFC 7846 §3.2.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Its peer ID.
    pub peer_id: String,
    /// Its address.
    pub peer_addr: PeerAddr,
}

/// One swarm's statistics in a STAT_REPORT (RFC 7846 §3.2.5, `stream_stats`). Counters the
/// peer leaves out read as 0.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamStats {
    /// The swarm.
    pub swarm_id: String,
    /// Bytes sent to the swarm.
    #[serde(default, deserialize_with = "int")]
    pub uploaded_bytes: u64,
    /// Bytes received from the swarm.
    #[serde(default, deserialize_with = "int")]
    pub downloaded_bytes: u64,
    /// Available upload bandwidth.
    #[serde(default, deserialize_with = "int")]
    pub available_bandwidth: u64,
    /// Concurrent links.
    #[serde(default, deserialize_with = "int")]
    pub concurrent_links: u64,
}

/// A CONNECT's data (RFC 7846 §3.3.3, `ppsp_tp_request_connect`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// The peer list wanted, if any.
    pub peer_num: Option<PeerNum>,
    /// The addresses the peer advertises (may be empty).
    pub peer_addr: Vec<PeerAddr>,
    /// At least one swarm action.
    pub swarm_action: Vec<SwarmAction>,
}

/// What a request asks (RFC 7846 §3.3.3, `request_data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestBody {
    /// Register and join or leave swarms.
    Connect(Connect),
    /// A peer list for a swarm.
    Find {
        /// The swarm.
        swarm_id: String,
        /// The peer list wanted.
        peer_num: Option<PeerNum>,
    },
    /// A keep-alive with statistics (STREAM_STATS; other property types are ignored).
    StatReport {
        /// The stats, one per swarm (empty: a bare keep-alive).
        stats: Vec<StreamStats>,
    },
}

/// A PPSTP request (RFC 7846 §3.3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Identifies the transaction; the response echoes it.
    pub transaction_id: String,
    /// The requesting peer.
    pub peer_id: String,
    /// What it asks.
    pub body: RequestBody,
}

/// A request that could not be decoded, with the error code to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// [`ErrorCode::BadRequest`] or [`ErrorCode::UnsupportedVersion`].
    pub code: ErrorCode,
    /// The request's transaction ID, when it could be read (the error response echoes it).
    pub transaction_id: Option<String>,
    /// What is wrong, for logs.
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.reason)
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    fn bad(reason: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::BadRequest,
            transaction_id: None,
            reason: reason.into(),
        }
    }

    /// The response to send for this error (empty body but for the envelope, as §4.3 says).
    pub fn response(&self) -> Response {
        Response::error(self.transaction_id.clone().unwrap_or_default(), self.code)
    }
}

#[derive(Deserialize)]
struct ConnectWire {
    #[serde(default)]
    peer_num: Option<PeerNum>,
    #[serde(default, deserialize_with = "one_or_many")]
    peer_addr: Vec<PeerAddr>,
    #[serde(deserialize_with = "one_or_many")]
    swarm_action: Vec<SwarmAction>,
}

#[derive(Deserialize)]
struct FindWire {
    swarm_id: String,
    #[serde(default)]
    peer_num: Option<PeerNum>,
}

#[derive(Deserialize)]
struct StatGroupWire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, alias = "Stat")]
    stat: Option<Value>,
}

#[derive(Deserialize)]
struct RequestWire {
    request_type: String,
    #[serde(deserialize_with = "string_or_int")]
    transaction_id: String,
    #[serde(deserialize_with = "string_or_int")]
    peer_id: String,
    #[serde(default)]
    connect: Option<ConnectWire>,
    #[serde(default)]
    find: Option<FindWire>,
    #[serde(default)]
    stat_report: Option<StatGroupWire>,
    // FIND as the example of RFC 7846 §4.1.2.1 writes it: at the root.
    #[serde(default)]
    swarm_id: Option<String>,
    #[serde(default)]
    peer_num: Option<PeerNum>,
}

/// The envelope's inner object and its version, or the error to answer.
fn open_envelope(body: &[u8]) -> Result<serde_json::Map<String, Value>, DecodeError> {
    if body.len() > MAX_BODY {
        return Err(DecodeError::bad(format!(
            "body of {} bytes exceeds {MAX_BODY}",
            body.len()
        )));
    }
    let root: Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::bad(format!("not JSON: {e}")))?;
    let Value::Object(mut root) = root else {
        return Err(DecodeError::bad("the message is not a JSON object"));
    };
    let Some(Value::Object(inner)) = root.remove(ROOT) else {
        return Err(DecodeError::bad(format!("no {ROOT} object")));
    };
    Ok(inner)
}

/// Checks the version member (after the transaction ID is known, so errors echo it).
fn check_version(
    inner: &serde_json::Map<String, Value>,
    txn: Option<&String>,
) -> Result<(), DecodeError> {
    let version = inner.get("version").and_then(value_int);
    match version {
        Some(VERSION) => Ok(()),
        Some(v) => Err(DecodeError {
            code: ErrorCode::UnsupportedVersion,
            transaction_id: txn.cloned(),
            reason: format!("version {v}"),
        }),
        None => Err(DecodeError {
            code: ErrorCode::BadRequest,
            transaction_id: txn.cloned(),
            reason: "no integer version".to_owned(),
        }),
    }
}

impl Request {
    /// Decodes a request body (lenient where the RFC is inconsistent; see the module docs).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let inner = open_envelope(body)?;
        let txn = inner.get("transaction_id").and_then(value_string);
        check_version(&inner, txn.as_ref())?;
        let bad = |reason: String| DecodeError {
            code: ErrorCode::BadRequest,
            transaction_id: txn.clone(),
            reason,
        };
        let w: RequestWire =
            serde_json::from_value(Value::Object(inner)).map_err(|e| bad(e.to_string()))?;
        let body = match w.request_type.as_str() {
            "CONNECT" => {
                let c = w
                    .connect
                    .ok_or_else(|| bad("CONNECT without connect".into()))?;
                if c.swarm_action.is_empty() {
                    return Err(bad("CONNECT without a swarm action".into()));
                }
                RequestBody::Connect(Connect {
                    peer_num: c.peer_num,
                    peer_addr: c.peer_addr,
                    swarm_action: c.swarm_action,
                })
            }
            "FIND" => match (w.find, w.swarm_id) {
                (Some(f), _) => RequestBody::Find {
                    swarm_id: f.swarm_id,
                    peer_num: f.peer_num,
                },
                (None, Some(swarm_id)) => RequestBody::Find {
                    swarm_id,
                    peer_num: w.peer_num,
                },
                (None, None) => return Err(bad("FIND without a swarm_id".into())),
            },
            "STAT_REPORT" => {
                let stats = match w.stat_report {
                    Some(g) if g.kind == "STREAM_STATS" => match g.stat {
                        Some(v) => one_or_many_value(v).map_err(|e| bad(e.to_string()))?,
                        None => Vec::new(),
                    },
                    // Another property type (§3.2.5 allows extensions): a keep-alive here.
                    Some(_) | None => Vec::new(),
                };
                RequestBody::StatReport { stats }
            }
            other => return Err(bad(format!("unknown request_type {other:?}"))),
        };
        Ok(Self {
            transaction_id: w.transaction_id,
            peer_id: w.peer_id,
            body,
        })
    }

    /// Encodes the request in the RFC's formal form.
    pub fn encode(&self) -> Vec<u8> {
        let mut inner = serde_json::Map::new();
        inner.insert("version".into(), VERSION.into());
        let kind = match &self.body {
            RequestBody::Connect(_) => "CONNECT",
            RequestBody::Find { .. } => "FIND",
            RequestBody::StatReport { .. } => "STAT_REPORT",
        };
        inner.insert("request_type".into(), kind.into());
        inner.insert("transaction_id".into(), self.transaction_id.clone().into());
        inner.insert("peer_id".into(), self.peer_id.clone().into());
        match &self.body {
            RequestBody::Connect(c) => {
                let mut m = serde_json::Map::new();
                if let Some(n) = &c.peer_num {
                    m.insert("peer_num".into(), to_value(n));
                }
                if !c.peer_addr.is_empty() {
                    m.insert("peer_addr".into(), to_value(&c.peer_addr));
                }
                m.insert("swarm_action".into(), to_value(&c.swarm_action));
                inner.insert("connect".into(), Value::Object(m));
            }
            RequestBody::Find { swarm_id, peer_num } => {
                let mut m = serde_json::Map::new();
                m.insert("swarm_id".into(), swarm_id.clone().into());
                if let Some(n) = peer_num {
                    m.insert("peer_num".into(), to_value(n));
                }
                inner.insert("find".into(), Value::Object(m));
            }
            RequestBody::StatReport { stats } => {
                if !stats.is_empty() {
                    let mut m = serde_json::Map::new();
                    m.insert("type".into(), "STREAM_STATS".into());
                    m.insert("stat".into(), to_value(stats));
                    inner.insert("stat_report".into(), Value::Object(m));
                }
            }
        }
        envelope(inner)
    }
}

/// The result of one swarm action, or of a FIND or STAT_REPORT (RFC 7846 §3.3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmResult {
    /// The swarm.
    pub swarm_id: String,
    /// Whether the action succeeded.
    pub result: ResponseType,
    /// The peers returned, if any (`None`: no `peer_group` member).
    pub peers: Option<Vec<PeerInfo>>,
    /// Extension (docs/tracker.md): the requester's membership certificate for this swarm,
    /// DER, issued on a successful JOIN by a tracker that is a certification authority
    /// (`membership_certificate`, lowercase hex, on the wire).
    pub membership_cert: Option<Vec<u8>>,
}

/// A PPSTP response (RFC 7846 §3.3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Successful or failed.
    pub response_type: ResponseType,
    /// Why it failed ([`ErrorCode::NoError`] when it did not).
    pub error_code: ErrorCode,
    /// The request's transaction ID.
    pub transaction_id: String,
    /// The requester's address as the tracker saw it (REFLEXIVE), if given.
    pub peer_addr: Option<PeerAddr>,
    /// One result per swarm concerned.
    pub swarm_result: Vec<SwarmResult>,
}

#[derive(Serialize, Deserialize)]
struct PeerGroupWire {
    #[serde(deserialize_with = "one_or_many")]
    peer_info: Vec<PeerInfo>,
}

#[derive(Serialize, Deserialize)]
struct SwarmResultWire {
    swarm_id: String,
    #[serde(deserialize_with = "int")]
    result: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer_group: Option<PeerGroupWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    membership_certificate: Option<String>,
}

#[derive(Deserialize)]
struct ResponseWire {
    #[serde(deserialize_with = "int")]
    response_type: u64,
    #[serde(deserialize_with = "int")]
    error_code: u64,
    #[serde(default, deserialize_with = "string_or_int")]
    transaction_id: String,
    #[serde(default)]
    peer_addr: Option<PeerAddr>,
    #[serde(default, deserialize_with = "one_or_many")]
    swarm_result: Vec<SwarmResultWire>,
}

fn response_type(n: u64) -> Result<ResponseType, String> {
    match n {
        0 => Ok(ResponseType::Successful),
        1 => Ok(ResponseType::Failed),
        n => Err(format!("response type {n}")),
    }
}

impl Response {
    /// A failure with no body but the envelope (RFC 7846 §4.3).
    pub fn error(transaction_id: String, code: ErrorCode) -> Self {
        Self {
            response_type: ResponseType::Failed,
            error_code: code,
            transaction_id,
            peer_addr: None,
            swarm_result: Vec::new(),
        }
    }

    /// Decodes a response body (lenient; see the module docs).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let inner = open_envelope(body)?;
        check_version(&inner, None)?;
        let w: ResponseWire = serde_json::from_value(Value::Object(inner))
            .map_err(|e| DecodeError::bad(e.to_string()))?;
        let error_code = ErrorCode::from_code(w.error_code)
            .ok_or_else(|| DecodeError::bad(format!("error code {}", w.error_code)))?;
        let mut swarm_result = Vec::with_capacity(w.swarm_result.len());
        for r in w.swarm_result {
            swarm_result.push(SwarmResult {
                swarm_id: r.swarm_id,
                result: response_type(r.result).map_err(DecodeError::bad)?,
                peers: r.peer_group.map(|g| g.peer_info),
                membership_cert: match r.membership_certificate {
                    None => None,
                    Some(h) => Some(
                        crate::ca::unhex(&h)
                            .ok_or_else(|| DecodeError::bad("membership_certificate is not hex"))?,
                    ),
                },
            });
        }
        Ok(Self {
            response_type: response_type(w.response_type).map_err(DecodeError::bad)?,
            error_code,
            transaction_id: w.transaction_id,
            peer_addr: w.peer_addr,
            swarm_result,
        })
    }

    /// Encodes the response in the RFC's formal form.
    pub fn encode(&self) -> Vec<u8> {
        let mut inner = serde_json::Map::new();
        inner.insert("version".into(), VERSION.into());
        inner.insert("response_type".into(), self.response_type.code().into());
        inner.insert("error_code".into(), self.error_code.code().into());
        inner.insert("transaction_id".into(), self.transaction_id.clone().into());
        if let Some(a) = &self.peer_addr {
            inner.insert("peer_addr".into(), to_value(a));
        }
        if !self.swarm_result.is_empty() {
            let results: Vec<SwarmResultWire> = self
                .swarm_result
                .iter()
                .map(|r| SwarmResultWire {
                    swarm_id: r.swarm_id.clone(),
                    result: r.result.code(),
                    peer_group: r.peers.as_ref().map(|p| PeerGroupWire {
                        peer_info: p.clone(),
                    }),
                    membership_certificate: r.membership_cert.as_deref().map(crate::ca::hex),
                })
                .collect();
            inner.insert("swarm_result".into(), to_value(&results));
        }
        envelope(inner)
    }

    /// Every peer address in the response's peer lists, in order, without repeats.
    pub fn peer_addrs(&self) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = Vec::new();
        for r in &self.swarm_result {
            for p in r.peers.iter().flatten() {
                let a = p.peer_addr.socket_addr();
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        out
    }
}

fn envelope(inner: serde_json::Map<String, Value>) -> Vec<u8> {
    let mut root = serde_json::Map::new();
    root.insert(ROOT.into(), Value::Object(inner));
    // Serialising a `Value` cannot fail (every key is a string).
    serde_json::to_vec(&Value::Object(root)).unwrap_or_default()
}

fn to_value<T: Serialize>(v: &T) -> Value {
    // Every type serialised here has string keys and finite numbers only.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// An integer, or a string holding one (the RFC's examples quote some integers).
fn value_int(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn int<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    value_int(&v).ok_or_else(|| serde::de::Error::custom(format!("expected an integer, got {v}")))
}

fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    int(d).map(Some)
}

fn string_or_int<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    value_string(&v).ok_or_else(|| serde::de::Error::custom(format!("expected a string, got {v}")))
}

fn one_or_many_value<T: for<'de> Deserialize<'de>>(v: Value) -> serde_json::Result<Vec<T>> {
    match v {
        Value::Array(items) => items.into_iter().map(serde_json::from_value).collect(),
        one => Ok(vec![serde_json::from_value(one)?]),
    }
}

fn one_or_many<'de, D: Deserializer<'de>, T: for<'a> Deserialize<'a>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    let v = Value::deserialize(d)?;
    one_or_many_value(v).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests;
