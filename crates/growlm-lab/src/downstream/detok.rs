//! The WikiText detokenizer lm-evaluation-harness's `wikitext` task applies to a page before
//! scoring it (docs/evaluation.md, the paper's Table 2 WikiText-2 column): WikiText's raw
//! files keep the tokenized spacing of their source (` @-@ `, ` , `, `= = Heading = =`),
//! and the task scores the text with that spacing undone, while it counts words and bytes
//! on the page as it is.
//!
//! The rules and their order are lm-eval 0.4's (`lm_eval/tasks/wikitext/
//! preprocess_wikitext.py`, `wikitext_detokenizer`), written here from their description; the
//! fixture's `make_expected.py` records lm-eval's output for every fixture page, and the
//! tests compare this function with it character for character.

use std::sync::OnceLock;

use regex::Regex;

/// A whitespace class as Python's `\s` has it for text: Unicode white space plus the four
/// information separators (U+001C to U+001F) that `str.isspace` counts.
const SPACE: &str = r"[\s\x1c-\x1f]";

/// Replacements in order: a plain text or a pattern, and what it becomes.
enum Rule {
    Plain(&'static str, &'static str),
    Pattern(Regex, &'static str),
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        // A pair of brackets `open … close` with the spaces just inside removed.
        let pair = |open: &str, close: &str| {
            let (o, c) = (regex::escape(open), regex::escape(close));
            let pattern = format!("{o}{SPACE}*([^{c}]*?){SPACE}*{c}");
            Rule::Pattern(Regex::new(&pattern).expect("a valid pattern"), "")
        };
        let mut rules = vec![
            // Contractions. The second rule is lm-eval's as written: it matches the literal
            // text `/' D/` (slashes included) and writes `/'[0-9]/`.
            Rule::Plain("s '", "s'"),
            Rule::Pattern(Regex::new(r"/' [0-9]/").expect("a valid pattern"), "/'[0-9]/"),
            // Number separators.
            Rule::Plain(" @-@ ", "-"),
            Rule::Plain(" @,@ ", ","),
            Rule::Plain(" @.@ ", "."),
            // Punctuation.
            Rule::Plain(" : ", ": "),
            Rule::Plain(" ; ", "; "),
            Rule::Plain(" . ", ". "),
            Rule::Plain(" ! ", "! "),
            Rule::Plain(" ? ", "? "),
            Rule::Plain(" , ", ", "),
        ];
        // Brackets and quotes; the replacement is the pair around the inner text.
        rules.extend([
            pair("(", ")"),
            pair("[", "]"),
            pair("{", "}"),
            pair("\"", "\""),
            pair("'", "'"),
        ]);
        rules.extend([
            Rule::Plain("= = = =", "===="),
            Rule::Plain("= = =", "==="),
            Rule::Plain("= =", "=="),
            Rule::Plain(" \u{b0} ", "\u{b0}"),
            Rule::Plain(" \n", "\n"),
            Rule::Plain("\n ", "\n"),
            Rule::Plain(" N ", " 1 "),
            Rule::Plain(" 's", "'s"),
        ]);
        rules
    })
}

/// The page as lm-eval's `wikitext` task scores it: WikiText's tokenized spacing undone.
pub fn wikitext_detokenize(page: &str) -> String {
    let mut s = page.to_string();
    for rule in rules() {
        s = match rule {
            Rule::Plain(from, to) => s.replace(from, to),
            Rule::Pattern(re, to) if !to.is_empty() => re.replace_all(&s, regex::NoExpand(to)).into_owned(),
            // A bracket pair: its first and last characters around the inner text.
            Rule::Pattern(re, _) => re
                .replace_all(&s, |c: &regex::Captures<'_>| {
                    let whole = c.get(0).map_or("", |m| m.as_str());
                    let open = whole.chars().next().unwrap_or_default();
                    let close = whole.chars().last().unwrap_or_default();
                    format!("{open}{}{close}", &c[1])
                })
                .into_owned(),
        };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wikitexts_spacing_is_undone_as_by_hand() {
        let cases = [
            (" = Valkyria Chronicles III = \n", " = Valkyria Chronicles III =\n"),
            (" = = Gameplay = = \n", " == Gameplay ==\n"),
            (" = = = Plot = = = \n", " === Plot ===\n"),
            ("a 1 @,@ 000 @-@ year @.@ 5 span", "a 1,000-year.5 span"),
            (
                "one , two ; three : four . five ! six ? seven",
                "one, two; three: four. five! six? seven",
            ),
            (
                "the ( new ) [ old ] { odd } \" quoted \"",
                "the (new) [old] {odd} \"quoted\"",
            ),
            ("a ' lone ' quote", "a 'lone' quote"),
            // The last rule (` 's` → `'s`) also takes a quoted word that starts with s.
            ("a ' single ' quote", "a'single' quote"),
            ("the players ' guild", "the players' guild"),
            ("the king 's men", "the king's men"),
            // Two quotes make a pair, whatever they were: lm-eval's behaviour too.
            (
                "the players ' guild and the king 's men",
                "the players'guild and the king's men",
            ),
            // The rules run in order: ` , ` before ` ° `, and ` N ` after both.
            ("at 40 ° C , N of them", "at 40°C, 1 of them"),
            ("won N to N games", "won 1 to 1 games"),
            ("a N N b", "a 1 N b"),
            ("odd /' 5/ rule", "odd /'[0-9]/ rule"),
            ("line one \n line two", "line one\nline two"),
        ];
        for (page, want) in cases {
            assert_eq!(wikitext_detokenize(page), want, "{page:?}");
        }
    }

    #[test]
    fn clean_text_is_left_as_it_is() {
        let page = "Harrow Point Lighthouse\n\nIt was built after a winter (a hard one), \"they said\".";
        assert_eq!(wikitext_detokenize(page), page);
    }
}
