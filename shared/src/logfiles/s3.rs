//! [`LogFiles`] in S3.

use std::sync::Arc;

use super::{LogFileError, LogFiles};
use crate::detect::Prefilter;
use crate::sources::log_file::{EventStream, ReadLimits};
use crate::sources::s3_notifications::ObjectRef;

/// Log files in S3, streamed as they download, within their [`ReadLimits`].
#[derive(Debug, Clone)]
pub struct S3LogFiles {
    client: aws_sdk_s3::Client,
    limits: ReadLimits,
    /// Records no loaded rule may match are left unparsed (see [`Prefilter`]).
    prefilter: Option<Arc<Prefilter>>,
}

impl S3LogFiles {
    pub fn new(client: aws_sdk_s3::Client) -> S3LogFiles {
        S3LogFiles {
            client,
            limits: ReadLimits::default(),
            prefilter: None,
        }
    }

    /// Reads every file within `limits`.
    pub fn with_limits(mut self, limits: ReadLimits) -> S3LogFiles {
        self.limits = limits;
        self
    }

    /// Parses only the records `prefilter` admits. It must be built from
    /// every rule the pipeline's detector runs, or findings are lost.
    pub fn with_prefilter(mut self, prefilter: Arc<Prefilter>) -> S3LogFiles {
        self.prefilter = Some(prefilter);
        self
    }
}

impl LogFiles for S3LogFiles {
    async fn open(&self, object: &ObjectRef) -> Result<EventStream, LogFileError> {
        let out = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            .send()
            .await
            .map_err(|e| LogFileError::Fetch {
                object: object.to_string(),
                message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
            })?;
        Ok(EventStream::from_async_filtered(
            out.body.into_async_read(),
            self.limits,
            self.prefilter.clone(),
        ))
    }
}
