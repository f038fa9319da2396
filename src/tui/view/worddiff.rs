//! Word-level changes inside a long field: the words the edit removed and added, in place,
//! so a reviewer sees "refund → credit" in a paragraph instead of two paragraphs to compare.
//! Marked `[-removed-]` and `{+added+}` as well as coloured, so it reads without colour.

/// What happened to a run of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Same,
    Removed,
    Added,
}

/// Past this many token pairs the comparison is not attempted (the caller shows both
/// versions whole).
const MAX_CELLS: usize = 400_000;

/// Words, runs of spaces, and line breaks, in order.
fn tokens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut kind: Option<u8> = None;
    for (i, c) in s.char_indices() {
        let k = if c == '\n' {
            2
        } else if c.is_whitespace() {
            1
        } else {
            0
        };
        if kind.is_some_and(|p| p != k || k == 2) {
            out.push(&s[start..i]);
            start = i;
        }
        kind = Some(k);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// The changes from `old` to `new`, runs of one kind merged; `None` when the texts are too
/// long to compare.
pub fn diff(old: &str, new: &str) -> Option<Vec<(Change, String)>> {
    let (a, b) = (tokens(old), tokens(new));
    let (n, m) = (a.len(), b.len());
    if n.saturating_mul(m) > MAX_CELLS {
        return None;
    }
    // Longest common subsequence, from the end.
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if a[i] == b[j] {
                lcs[at(i + 1, j + 1)] + 1
            } else {
                lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
            };
        }
    }
    let mut out: Vec<(Change, String)> = Vec::new();
    let mut push = |c: Change, t: &str| match out.last_mut() {
        Some((last, text)) if *last == c => text.push_str(t),
        _ => out.push((c, t.to_string())),
    };
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            push(Change::Same, a[i]);
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[at(i, j + 1)] >= lcs[at(i + 1, j)]) {
            push(Change::Added, b[j]);
            j += 1;
        } else {
            push(Change::Removed, a[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_changed_inside_a_sentence() {
        let d = diff(
            "Customer asks for a refund of order 4471 today.",
            "Customer asks for a store credit on order 4471 today.",
        )
        .unwrap();
        let runs = |k: Change| -> Vec<String> {
            d.iter()
                .filter(|(c, _)| *c == k)
                .map(|(_, t)| t.trim().to_string())
                .collect()
        };
        assert_eq!(runs(Change::Removed), ["refund", "of"]);
        assert_eq!(runs(Change::Added), ["store credit", "on"]);
        let same: String = d
            .iter()
            .filter(|(c, _)| *c != Change::Added)
            .map(|(_, t)| t.as_str())
            .collect();
        assert_eq!(same, "Customer asks for a refund of order 4471 today.");
        assert_eq!(tokens("a  b\n\nc"), ["a", "  ", "b", "\n", "\n", "c"]);
    }
}
