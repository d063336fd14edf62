//! What the pro tier reports in the OperatorStatus. The pro task publishes it; the status plan
//! reads it. Pure data.

use std::collections::BTreeMap;

use kube9_api::operator_status::{AcknowledgementSync, Insight, OperatorStatusStatus, UploadStatus};

/// What the pro tier reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub upload: Option<UploadStatus>,
    pub insights: Vec<Insight>,
    pub insights_omitted: Option<u32>,
    pub acknowledgements: BTreeMap<String, AcknowledgementSync>,
    /// Why the pro tier is not working, when it is not.
    pub failure: Option<String>,
}

impl Report {
    /// What a status written earlier holds: insights and delivery records outlive a restart.
    pub fn from_status(status: &OperatorStatusStatus) -> Report {
        Report {
            upload: status.upload.clone(),
            insights: status.insights.clone(),
            insights_omitted: status.insights_omitted,
            acknowledgements: status.acknowledgements.clone(),
            failure: None,
        }
    }
}
