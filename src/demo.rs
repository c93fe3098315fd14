//! placeholder
/// Placeholder.
pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}
