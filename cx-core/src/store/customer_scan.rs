use crate::error::Result;
use crate::model::{Customer, CustomerId};
use async_trait::async_trait;

/// Every customer profile, page by page (segment membership, exports).
///
/// # Contract
///
/// - Pages are ordered by customer id (byte order); a page holds the first `limit` profiles
///   (at least 1) with an id after `after` (from the start for `None`). An empty page is the
///   end. Merged-away and forgotten customers are not returned.
#[async_trait]
pub trait CustomerScan: Send + Sync {
    /// One page of profiles.
    async fn customer_page(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>>;
}
