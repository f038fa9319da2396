//! How alike two free texts are (the AI's summary or next step against what a person
//! wrote): the Sørensen–Dice coefficient over their words. Words are the runs of letters
//! and digits (any script), lowercased; each word counts as often as it occurs.
//! `2·|A∩B| / (|A|+|B|)`: 1 for the same words in any order, 0 for no word in common; two
//! empty texts are alike (1). Cheap, explainable, and blind to meaning: "refund issued" and
//! "money returned" score 0, so it is read as a share of wording kept, not of sense.
use std::collections::HashMap;

fn words(s: &str) -> HashMap<String, u32> {
    let mut m = HashMap::new();
    for w in s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        *m.entry(w.to_lowercase()).or_insert(0) += 1;
    }
    m
}

/// The word-level Dice coefficient of `a` and `b`, in 0..=1.
pub fn similarity(a: &str, b: &str) -> f64 {
    let (wa, wb) = (words(a), words(b));
    let (na, nb): (u32, u32) = (wa.values().sum(), wb.values().sum());
    if na + nb == 0 {
        return 1.0;
    }
    let common: u32 = wa
        .iter()
        .map(|(w, n)| (*n).min(wb.get(w).copied().unwrap_or(0)))
        .sum();
    2.0 * f64::from(common) / f64::from(na + nb)
}

#[cfg(test)]
mod tests {
    use super::similarity;

    #[test]
    fn words_in_any_order_and_case_are_alike() {
        assert_eq!(similarity("Book a demo", "a DEMO, book!"), 1.0);
        assert_eq!(similarity("", "  "), 1.0);
        assert_eq!(similarity("refund issued", "money returned"), 0.0);
        // 2·2 / (3 + 3)
        let s = similarity("book a demo", "book a call");
        assert!((s - 4.0 / 6.0).abs() < 1e-9, "{s}");
        // Any script; repeated words count each time.
        assert_eq!(similarity("Запрос на демо", "запрос на демо"), 1.0);
        let s = similarity("very very late", "very late");
        assert!((s - 0.8).abs() < 1e-9, "{s}");
    }
}
