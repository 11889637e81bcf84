//! Token authentication: with a token configured, a call without `authorization: Bearer <token>`
//! is refused as unauthenticated before it reaches the service.

use tonic::{Request, Status};

#[derive(Clone)]
pub struct TokenCheck {
    expected: Option<String>,
}

impl TokenCheck {
    pub fn new(token: Option<String>) -> Self {
        TokenCheck {
            expected: token.map(|t| format!("Bearer {t}")),
        }
    }
}

/// Compares in time independent of where the strings differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl tonic::service::Interceptor for TokenCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(req);
        };
        match req.metadata().get("authorization") {
            Some(v) if same(v.as_bytes(), expected.as_bytes()) => Ok(req),
            Some(_) => Err(Status::unauthenticated("wrong token")),
            None => Err(Status::unauthenticated(
                "this coordinator needs a token: pass --token or set ISCP_TOKEN",
            )),
        }
    }
}
