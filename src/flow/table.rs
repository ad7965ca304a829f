//! The flow table: one entry per live TCP connection, keyed by its 5-tuple.

use super::{FlowConfig, Interest, RoleProbe, StreamEvent};
use crate::decode::Segment;
use crate::model::Coverage;

pub struct FlowTable {
    config: FlowConfig,
    probe: RoleProbe,
}

impl FlowTable {
    pub fn new(config: FlowConfig, probe: RoleProbe) -> Self {
        FlowTable { config, probe }
    }

    /// Feeds one segment; events go to `out` in stream order.
    pub fn push(
        &mut self,
        seg: &Segment<'_>,
        cov: &mut Coverage,
        out: &mut impl FnMut(StreamEvent<'_>) -> Interest,
    ) {
        let _ = (seg, cov, out, &self.config, self.probe);
        todo!()
    }

    /// Closes every connection still open (reason `EndOfCapture`), flushing buffered bytes.
    pub fn finish(&mut self, cov: &mut Coverage, out: &mut impl FnMut(StreamEvent<'_>) -> Interest) {
        let _ = (cov, out);
        todo!()
    }
}
