//! `skybridge bench`: invoke latency through HTTP against the in-process floor.
#![allow(missing_docs)]

#[derive(clap::Args, Debug)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
