//! Configuration documents (suppression rules, the routing table): YAML or
//! JSON read from a file or an SSM parameter at cold start, and the shapes
//! they share. A leaf, so the modules that load documents need not import
//! each other.

use serde::Deserialize;

/// A field that takes one string or a list of them (`account: 1234` or
/// `account: [1234, 5678]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Why a configuration document could not be read from SSM Parameter Store.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SsmReadError {
    /// The parameter does not exist: a configuration mistake.
    #[error("parameter not found")]
    NotFound,
    /// Throttling, network, permissions: the caller decides whether to run
    /// without the document.
    #[error("{0}")]
    Unavailable(String),
}

/// Reads a YAML or JSON document (suppression rules, the routing table) from
/// an SSM parameter, decrypted. An empty parameter is an empty document.
pub(crate) async fn ssm_document(
    sdk: &aws_config::SdkConfig,
    parameter: &str,
) -> Result<String, SsmReadError> {
    let client = aws_sdk_ssm::Client::new(sdk);
    match client
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .parameter()
            .and_then(|p| p.value())
            .unwrap_or_default()
            .to_string()),
        Err(e) => {
            if e.as_service_error()
                .is_some_and(|se| se.is_parameter_not_found())
            {
                Err(SsmReadError::NotFound)
            } else {
                Err(SsmReadError::Unavailable(
                    aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
                ))
            }
        }
    }
}
