//! The interactive menu (filled in below).

use std::path::PathBuf;

use anyhow::Result;
use crossbeam_channel::Receiver;

use crate::session::Session;

pub fn run(_s: &Session, _ctrlc: Receiver<()>, _stats: Option<PathBuf>) -> Result<()> {
    Ok(())
}
