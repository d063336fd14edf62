//! The one paginated list loop: every object of a collection, page by page, each handed over
//! before the next page is fetched, so a caller holds at most one page beside what it keeps.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use kube::api::ListParams;
use kube::core::Request;

/// Objects per page.
pub const PAGE: u32 = 500;

/// Why a list stopped early.
#[derive(Debug)]
pub enum ListError<E> {
    /// The API server refused or failed (see [`status_code`]).
    Kube(kube::Error),
    /// The caller stopped it.
    Stopped(E),
}

/// One page as the API server sends it: items stay JSON values, parsed once.
#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    items: Vec<serde_json::Value>,
    #[serde(default)]
    metadata: ListMeta,
}

/// Hands every item of the list at `path` (for example `/apis/apps/v1/deployments`) to `each`,
/// which may stop the list by returning an error.
pub async fn each_item<E>(
    client: &kube::Client,
    path: &str,
    mut each: impl FnMut(serde_json::Value) -> Result<(), E>,
) -> Result<(), ListError<E>> {
    let mut pages = Pages::new(path, PAGE);
    while let Some(items) = pages.next(client).await.map_err(ListError::Kube)? {
        for item in items {
            each(item).map_err(ListError::Stopped)?;
        }
    }
    Ok(())
}

/// The list at a path, read a page at a time: the caller holds one page.
pub struct Pages {
    request: Request,
    params: ListParams,
    done: bool,
}

impl Pages {
    /// The list at `path`, `limit` objects a page.
    pub fn new(path: &str, limit: u32) -> Pages {
        Pages { request: Request::new(path), params: ListParams::default().limit(limit), done: false }
    }

    /// The next page's items; None after the last page.
    pub async fn next(&mut self, client: &kube::Client) -> Result<Option<Vec<serde_json::Value>>, kube::Error> {
        if self.done {
            return Ok(None);
        }
        let list = self.request.list(&self.params).map_err(kube::Error::BuildRequest)?;
        let page: Page = client.request(list).await?;
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => self.params = std::mem::take(&mut self.params).continue_token(&token),
            None => self.done = true,
        }
        Ok(Some(page.items))
    }
}

/// The HTTP status of an error the API server answered with.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
