//! Name lookups for the client: the system resolver, as reqwest's own, but a failed lookup is a
//! [`LookupFailed`], a type of ours, so that classification finds it in an error's causes by
//! type (the HTTP stack's own resolver error has no public type).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The system's resolver (`getaddrinfo`, off the async threads), as reqwest uses by default.
#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map(|addrs| addrs.collect::<Vec<_>>());
            match found {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                Err(source) => Err(Box::new(LookupFailed { host, source }) as _),
            }
        })
    }
}

/// The appliance's name did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("dns lookup of {host} failed")]
pub struct LookupFailed {
    /// The name looked up.
    pub host: String,
    /// The resolver's own error, which says why.
    #[source]
    pub source: std::io::Error,
}
