//! Connecting to a coordinator: the endpoint (http or https with a trusted CA), the bearer token on
//! every call, and message size limits. Shared by the worker and the admin commands.

use iscp_proto::{CoordinatorClient, MAX_MESSAGE_BYTES};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

/// Where the coordinator is and how to prove who we are.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// `http://host:port`, or `https://host:port` with `ca`.
    pub url: String,
    pub token: Option<String>,
    /// PEM of the CA that signed the coordinator's certificate.
    pub ca: Option<Vec<u8>>,
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

pub type Client = CoordinatorClient<InterceptedService<Channel, Bearer>>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("coordinator address `{0}`: {1}")]
    Address(String, String),
    #[error("the token holds characters a header cannot carry")]
    Token,
}

/// A client whose channel connects lazily and reconnects by itself after the coordinator comes back.
pub fn connect(c: &Connect) -> Result<Client, ConnectError> {
    let bad = |e: tonic::transport::Error| ConnectError::Address(c.url.clone(), e.to_string());
    let mut ep = Endpoint::from_shared(c.url.clone())
        .map_err(bad)?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    if let Some(ca) = &c.ca {
        ep = ep
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
            .map_err(bad)?;
    }
    let token = match &c.token {
        Some(t) => Some(
            format!("Bearer {t}")
                .parse()
                .map_err(|_| ConnectError::Token)?,
        ),
        None => None,
    };
    Ok(
        CoordinatorClient::with_interceptor(ep.connect_lazy(), Bearer(token))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
}
