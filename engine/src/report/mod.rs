//! report (temporary stub until the report helper lands)
#![allow(missing_docs)]
use crate::results::Results;
#[derive(Debug)]
pub struct ReportError;
impl std::fmt::Display for ReportError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("stub") } }
pub fn render(_r: &Results) -> Result<Vec<(String, Vec<u8>)>, ReportError> { Ok(vec![]) }
pub fn terminal_table(r: &Results) -> String { format!("{:#?}\n", r.variants.iter().map(|v| (&v.name, v.requests, v.availability, &v.latency_ms)).collect::<Vec<_>>()) }
