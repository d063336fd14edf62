//! Text limits shared by everything that writes status: a status field has a bound, and a cut
//! says so.

/// Cuts text to at most `max` characters, marking the cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Text from outside (a server's answer), cut to `max` characters and stripped of control
/// characters, so a hostile or broken peer cannot flood a status.
pub fn printable(text: &str, max: usize) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    truncate(&clean, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_marked_and_counted_in_characters() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééééé", 3), "éé…");
        assert_eq!(printable("a\u{7}b\nc", 10), "abc");
    }
}
