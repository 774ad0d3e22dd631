//! A categorical time series (a breaker's state, a replica's role, a backend's health) that a
//! component keeps while it runs: every change with its exact time, and per window the state
//! that lasted longest. The report draws it as a timeline of coloured bands; an average of
//! state numbers ("1.6 between half-open and open") means nothing.
//!
//! Memory grows with the number of windows (at most `MAX_WINDOWS`) and at most [`MAX_CHANGES`] changes; changes
//! beyond that are counted, and the report says where the timeline stops.

use crate::contract::metrics::{window_index, windows_until};
use crate::results::{SeriesResult, StateChange, StateTrack};
use crate::sim::time::{SimDuration, SimTime};

/// Most changes one series keeps.
pub const MAX_CHANGES: usize = 20_000;

/// A series of states named by `names`; a state is an index into them.
#[derive(Clone, Debug)]
pub struct StateSeries {
    names: &'static [&'static str],
    window: SimDuration,
    changes: Vec<(SimTime, u32)>,
    dropped: u64,
    /// Per window, nanoseconds spent in each state (flattened: window × state).
    time_in: Vec<u64>,
    state: Option<u32>,
    since: SimTime,
}

impl StateSeries {
    /// A series with windows of `window` (use `BuildCtx::window`) and no state yet.
    pub fn new(names: &'static [&'static str], window: SimDuration) -> Self {
        StateSeries {
            names,
            window: SimDuration(window.0.max(1)),
            changes: Vec::new(),
            dropped: 0,
            time_in: Vec::new(),
            state: None,
            since: SimTime(0),
        }
    }

    /// A series that is in `state` from time zero.
    pub fn starting(names: &'static [&'static str], window: SimDuration, state: usize) -> Self {
        let mut series = StateSeries::new(names, window);
        series.set(SimTime(0), state);
        series
    }

    /// The state is `state` (an index into the names) from `now` on; a repeat is no change.
    pub fn set(&mut self, now: SimTime, state: usize) {
        let state = u32::try_from(state.min(self.names.len().saturating_sub(1))).unwrap_or(0);
        if self.state == Some(state) {
            return;
        }
        self.advance(now);
        self.state = Some(state);
        if self.changes.len() < MAX_CHANGES {
            self.changes.push((now, state));
        } else {
            self.dropped += 1;
        }
    }

    /// Name the states by `names` from now on: the same names first, then more (a state only
    /// some runs reach, listed only when one does). Time already spent keeps its state.
    pub fn widen(&mut self, names: &'static [&'static str]) {
        let n = self.names.len();
        if names.len() <= n || names[..n] != *self.names {
            return;
        }
        let m = names.len();
        let windows = self.time_in.len() / n.max(1);
        let mut time_in = vec![0; windows * m];
        for w in 0..windows {
            time_in[w * m..w * m + n].copy_from_slice(&self.time_in[w * n..(w + 1) * n]);
        }
        self.time_in = time_in;
        self.names = names;
    }

    /// The current state, if one was set.
    pub fn state(&self) -> Option<usize> {
        self.state.map(|s| s as usize)
    }

    /// Fold the current state's time into the windows up to `now`.
    fn advance(&mut self, now: SimTime) {
        let Some(state) = self.state else {
            self.since = now;
            return;
        };
        let n = self.names.len();
        let mut t = self.since;
        while t < now {
            // No further than the last window a run can have, however long the drain.
            let Some(i) = window_index(t, self.window) else {
                break;
            };
            let end = SimTime((i as u64 + 1).saturating_mul(self.window.0)).min(now);
            if self.time_in.len() < (i + 1) * n {
                self.time_in.resize((i + 1) * n, 0);
            }
            self.time_in[i * n + state as usize] += end.0 - t.0;
            t = end;
        }
        self.since = self.since.max(now);
    }

    /// The finished series: per window until `end` the longest-held state, and the changes.
    pub fn finish(&mut self, name: &str, title: &str, end: SimTime) -> SeriesResult {
        self.advance(end);
        let n = self.names.len().max(1);
        let windows = windows_until(end, self.window);
        let values = (0..windows)
            .map(|i| {
                let row = self.time_in.get(i * n..(i + 1) * n)?;
                let (state, &time) = row.iter().enumerate().max_by_key(|&(s, t)| (*t, n - s))?;
                (time > 0).then_some(state as f64)
            })
            .collect();
        SeriesResult {
            name: name.to_string(),
            title: title.to_string(),
            unit: "state".to_string(),
            values,
            label: None,
            states: Some(StateTrack {
                names: self.names.iter().map(|s| s.to_string()).collect(),
                changes: self
                    .changes
                    .iter()
                    .filter(|(t, _)| *t <= end)
                    .map(|&(at, state)| StateChange {
                        at_s: at.as_secs_f64(),
                        state,
                    })
                    .collect(),
                dropped: self.dropped,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_exact_changes_and_the_longest_state_per_window() {
        let mut s = StateSeries::new(&["closed", "half-open", "open"], SimDuration(1_000));
        s.set(SimTime(0), 0);
        s.set(SimTime(300), 2);
        s.set(SimTime(400), 2);
        s.set(SimTime(1_600), 1);
        s.set(SimTime(1_700), 0);
        let r = s.finish("breaker_state", "Breaker", SimTime(3_000));
        // Window 0: closed 300, open 700; window 1: open 600, half-open 100, closed 300.
        assert_eq!(r.values, vec![Some(2.0), Some(2.0), Some(0.0)]);
        let track = r.states.expect("states");
        let changes: Vec<(f64, u32)> = track.changes.iter().map(|c| (c.at_s, c.state)).collect();
        assert_eq!(changes, [(0.0, 0), (3e-7, 2), (1.6e-6, 1), (1.7e-6, 0)]);
        assert_eq!(track.names, ["closed", "half-open", "open"]);
    }

    #[test]
    fn widening_keeps_the_time_already_spent() {
        let mut s = StateSeries::new(&["a", "b"], SimDuration(10));
        s.set(SimTime(0), 1);
        s.set(SimTime(15), 0);
        s.widen(&["a", "b", "c"]);
        s.set(SimTime(22), 2);
        let r = s.finish("x", "X", SimTime(30));
        assert_eq!(r.values, vec![Some(1.0), Some(0.0), Some(2.0)]);
        assert_eq!(r.states.expect("states").names, ["a", "b", "c"]);
    }

    #[test]
    fn a_series_without_a_state_has_no_values() {
        let mut s = StateSeries::new(&["a", "b"], SimDuration(10));
        let r = s.finish("x", "X", SimTime(25));
        assert_eq!(r.values, vec![None, None, None]);
    }
}
