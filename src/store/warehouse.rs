//! placeholder: being written (normalize helper owns this file)
pub const NORMALIZED_TABLES: &[&str] = &[];
pub async fn write_batch(
    _conn: &mut sqlx::PgConnection,
    _batch: &crate::normalize::Batch,
) -> sqlx::Result<u64> {
    Ok(0)
}
