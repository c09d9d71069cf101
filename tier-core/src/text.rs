//! Text shown to people.

/// Text from input as one visible line: control characters (a newline in a file name, an
/// escape sequence in a key) written as escapes, so no input can forge or hide report lines.
///
/// ```
/// assert_eq!(tier_core::visible("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
/// assert_eq!(tier_core::visible("plain é"), "plain é");
/// ```
pub fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}
