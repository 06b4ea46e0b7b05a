//! [`Auth`]: the token lifecycle. A token is obtained with the API client's key and secret,
//! shared by every request, refreshed before it expires ([`token`]), and renewed once when the
//! appliance refuses it (401, 403 or Device42's permission 500); a second refusal is an auth
//! error, never a loop.

pub mod token;

use super::classify::answer::{outcome, refuses_token};
use super::error::{Error, excerpt, never_quote};
use super::exchange::{Body, Request};
use super::models::{self, TokenGrant};
use super::transport::Transport;
use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use token::TokenCache;

/// The token endpoint (the trailing slash is required by Device42).
pub const TOKEN_PATH: &str = "/tauth/1.0/token/";

/// The credentials and the token of one client.
pub struct Auth {
    /// The API client's key, sent only to the token endpoint.
    client_key: SecretString,
    /// The API client's secret, sent only to the token endpoint.
    secret_key: SecretString,
    /// The token in use, shared by the client's clones.
    tokens: TokenCache,
}

impl Auth {
    /// Authentication with these credentials, which no error message will quote from now on:
    /// an appliance may echo them back in an answer that ends up in a log line or a row.
    pub fn new(client_key: SecretString, secret_key: SecretString) -> Self {
        never_quote(&client_key);
        never_quote(&secret_key);
        Self {
            client_key,
            secret_key,
            tokens: TokenCache::default(),
        }
    }

    /// Time left on the current token.
    pub fn expires_in(&self) -> Option<Duration> {
        self.tokens.expires_in()
    }

    /// One request with a bearer token, renewing the token once when it is refused; the
    /// answer classified.
    pub async fn authorized(
        &self,
        transport: &Transport,
        request: &Request<'_>,
    ) -> Result<Body, Error> {
        let (token, generation) = self.token(transport).await?;
        let first = self.send(transport, request, &token).await?;
        if !refuses_token(&first) {
            return outcome(first);
        }
        tracing::debug!(endpoint = %first.endpoint, status = first.status, "token refused, obtaining a new one");
        self.tokens.invalidate(generation).await;
        let (token, _) = self.token(transport).await?;
        let second = self.send(transport, request, &token).await?;
        if refuses_token(&second) {
            return Err(refused(&second, "token refused again after renewal"));
        }
        outcome(second)
    }

    /// The current token, obtaining one (single flight) when needed.
    pub async fn token(&self, transport: &Transport) -> Result<(SecretString, u64), Error> {
        self.tokens.get(|| self.fetch(transport)).await
    }

    /// `POST /tauth/1.0/token/` with the API client's key and secret. Never retried here.
    async fn fetch(
        &self,
        transport: &Transport,
    ) -> Result<(TokenGrant, Option<DateTime<Utc>>), Error> {
        let token = Request::post(TOKEN_PATH, None);
        let request = transport.request(&token).basic_auth(
            self.client_key.expose_secret(),
            Some(self.secret_key.expose_secret()),
        );
        let body = transport.send(token.endpoint(), request).await?;
        if refuses_token(&body) {
            return Err(refused(&body, "the API client key or secret was refused"));
        }
        let body = outcome(body)?;
        let grant = models::parse_token(&body.bytes).map_err(|cause| body.bad(cause))?;
        let lifetime = token::planned_lifetime(&grant, body.date);
        let expires_at = Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or_default();
        transport.metrics().token_obtained(expires_at.timestamp());
        tracing::info!(
            token_id = grant.token_id,
            lifetime_s = lifetime.as_secs_f64(),
            "obtained a Device42 token"
        );
        Ok((grant, body.date))
    }

    /// `request` with `token` as its bearer.
    async fn send(
        &self,
        transport: &Transport,
        request: &Request<'_>,
        token: &SecretString,
    ) -> Result<Body, Error> {
        let endpoint = request.endpoint();
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| Error::Auth {
                endpoint: endpoint.clone(),
                status: 0,
                message: "token is not a valid header".into(),
            })?;
        bearer.set_sensitive(true);
        let sent = transport.request(request).header(AUTHORIZATION, bearer);
        transport.send(endpoint, sent).await
    }
}

/// The auth error for an answer that refused the credential, `what` saying which.
fn refused(body: &Body, what: &str) -> Error {
    Error::Auth {
        endpoint: body.endpoint.clone(),
        status: body.status,
        message: format!("{what}: {}", excerpt(&body.bytes)),
    }
}
