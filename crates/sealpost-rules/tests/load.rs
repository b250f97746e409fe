//! Loading rules files: every kind of mistake is reported with its exact line and column, all
//! mistakes of a file at once, and a file with any mistake yields no rule set.

use sealpost_rules::{LoadError, RuleSet, parse_size};

fn errors(text: &str) -> Vec<LoadError> {
    match RuleSet::load(text) {
        Ok(_) => panic!("loaded a bad file:\n{text}"),
        Err(e) => e.0,
    }
}

/// Asserts the file has exactly one error, at `line:column`, whose message contains `needle`.
fn one_error(text: &str, line: usize, column: usize, needle: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:?}\n{text}");
    let e = &errs[0];
    assert_eq!((e.line, e.column), (line, column), "{e}");
    assert!(e.message.contains(needle), "{e}");
}

const HEAD: &str = "[organization]\ndomains = [\"acme.example\"]\n\n[[rules]]\nname = \"r\"\n";

#[test]
fn every_error_kind_has_its_line_and_column() {
    let table: [(&str, usize, usize, &str); 22] = [
        (
            "colour = \"red\"\n[rules.actions]\nstop = true\n",
            6,
            1,
            "unknown key `colour` in a rule",
        ),
        (
            "priority = \"high\"\n[rules.actions]\nstop = true\n",
            6,
            12,
            "priority must be an integer, not a string",
        ),
        (
            "mode = \"enforced\"\n[rules.actions]\nstop = true\n",
            6,
            8,
            "neither \"enforce\" nor \"test\"",
        ),
        (
            "[rules.conditions]\nsubject_matches = \"(open\"\n[rules.actions]\nstop = true\n",
            7,
            19,
            "invalid regular expression \"(open\"",
        ),
        (
            "[rules.conditions]\nsubject_contains = 5\n[rules.actions]\nstop = true\n",
            7,
            20,
            "must be a string or a list of strings, not a integer",
        ),
        (
            "[rules.conditions]\nsubject_contains = []\n[rules.actions]\nstop = true\n",
            7,
            20,
            "must not be an empty list",
        ),
        (
            "[rules.conditions]\nsize_over = \"10XB\"\n[rules.actions]\nstop = true\n",
            7,
            13,
            "size_over must be",
        ),
        (
            "[rules.conditions]\nrecipient = \"acme.example\"\n[rules.actions]\nstop = true\n",
            7,
            13,
            "not an e-mail address",
        ),
        (
            "[rules.conditions]\nrecipient_domain = \"a@b\"\n[rules.actions]\nstop = true\n",
            7,
            20,
            "not a domain",
        ),
        (
            "[rules.conditions]\nheader_contains = { words = [\"x\"] }\n[rules.actions]\nstop = true\n",
            7,
            19,
            "needs a header `name`",
        ),
        (
            "[rules.conditions]\nheader_matches = { name = \"X\", patterns = [\"(\"] }\n[rules.actions]\nstop = true\n",
            7,
            44,
            "invalid regular expression",
        ),
        (
            "[rules.conditions]\nbody_contains = \"x\"\n[rules.actions]\nstop = true\n",
            7,
            1,
            "unknown key `body_contains` in conditions",
        ),
        (
            "[rules.except]\nsize_over = -1\n[rules.actions]\nstop = true\n",
            7,
            13,
            "size_over must be",
        ),
        (
            "[rules.actions]\nencrypt = \"Top Secret\"\n",
            7,
            11,
            "unknown template \"Top Secret\"",
        ),
        (
            "[rules.actions]\nreject = \"no\"\nencrypt = \"Encrypt-Only\"\n",
            7,
            1,
            "conflicting actions: `reject` cannot be combined with `encrypt`",
        ),
        (
            "[rules.actions]\nreject = \"no\"\nadd_header = { name = \"X\", value = \"1\" }\n",
            7,
            1,
            "`reject` cannot be combined with `add_header`",
        ),
        (
            "[rules.actions]\nadd_header = { name = \"Bad Name\", value = \"1\" }\n",
            7,
            23,
            "not a header field name",
        ),
        (
            "[rules.actions]\nstop = \"yes\"\n",
            7,
            8,
            "stop must be true or false",
        ),
        (
            "[rules.actions]\nstop = false\n",
            6,
            1,
            "the rule has no actions",
        ),
        (
            "[rules.conditions]\nsubject_contains = \"x\"\n",
            4,
            1,
            "rule \"r\" has no actions",
        ),
        ("[rules.actions]\nencrypt = \n", 7, 11, "invalid TOML"),
        (
            "[rules.actions]\nfrobnicate = true\n",
            7,
            1,
            "unknown key `frobnicate` in actions",
        ),
    ];
    for (rest, line, column, needle) in table {
        one_error(&format!("{HEAD}{rest}"), line, column, needle);
    }
}

#[test]
fn template_and_organization_errors() {
    one_error(
        "[[templates]]\nname = \"T\"\nrights = [\"print\"]\n",
        2,
        8,
        "does not grant the view right",
    );
    one_error(
        "[[templates]]\nname = \"T\"\nrights = [\"view\", \"fly\"]\n",
        3,
        19,
        "unknown right \"fly\"",
    );
    one_error(
        "[[templates]]\nname = \"T\"\nrights = [\"view\"]\nexpires_after = \"soon\"\n",
        4,
        17,
        "not a duration",
    );
    one_error(
        "[[templates]]\nname = \"T\"\nrights = [\"view\"]\n[[templates]]\nname = \"t\"\nrights = [\"view\"]\n",
        5,
        8,
        "defined twice",
    );
    one_error(
        "[[templates]]\nname = \"Encrypt-Only\"\nrights = [\"view\"]\n",
        2,
        8,
        "name of a built-in template",
    );
    one_error(
        "[[rules]]\nname = \"r\"\n[rules.conditions]\nrecipient_scope = \"outside\"\n[rules.actions]\nstop = true\n",
        4,
        19,
        "needs the organization's domains",
    );
    one_error(
        "[organization]\ndomains = [\"acme.example\"]\nregion = \"eu\"\n",
        3,
        1,
        "unknown key `region` in [organization]",
    );
    one_error("rules = 5\n", 1, 9, "rules must be an array of tables");
}

#[test]
fn duplicate_rule_names_are_reported_even_when_the_rule_has_other_errors() {
    let errs = errors(&format!(
        "{HEAD}[rules.actions]\nstop = true\n\n[[rules]]\nname = \"R\"\n[rules.actions]\nreject = \"x\"\nencrypt = \"Encrypt-Only\"\n"
    ));
    let at: Vec<(usize, usize)> = errs.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(at, [(10, 8), (12, 1)], "{errs:?}");
    assert!(errs[0].message.contains("rule name \"R\" is used twice"));
}

#[test]
fn all_errors_at_once_in_file_order() {
    let text = "\
[keyservice]
listen = \"127.0.0.1:8080\"

[organization]
domains = [\"acme.example\"]

[[rules]]
name = \"a\"
colour = \"red\"
[rules.conditions]
subject_matches = \"(unclosed\"
size_over = \"10XB\"
[rules.actions]
encrypt = \"Nope\"

[[rules]]
name = \"a\"
[rules.actions]
reject = \"no\"
encrypt = \"Encrypt-Only\"

[[rules]]
name = \"empty\"
[rules.conditions]
subject_contains = \"x\"
";
    let errs = errors(text);
    let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, [9, 11, 12, 14, 17, 19, 22], "{errs:#?}");
    let shown = errs[1].to_string();
    assert_eq!(
        shown,
        "11:19: invalid regular expression \"(unclosed\": unclosed group"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    one_error(
        "# Grüße\n[[rules]]\nname = \"ü\" \nmode = \"später\"\n[rules.actions]\nstop = true\n",
        4,
        8,
        "neither",
    );
}

#[test]
fn a_valid_file_loads_and_other_tables_are_ignored() {
    let set = RuleSet::load(
        "[keyservice]\nlisten = \"127.0.0.1:1\"\n[other]\nx = 1\n\
         [organization]\ndomains = [\"Acme.Example\"]\n\
         [[rules]]\nname = \"r\"\n[rules.actions]\nstop = true\n",
    )
    .unwrap();
    assert_eq!(set.rules().len(), 1);
    assert_eq!(set.domains(), ["acme.example"]);
    assert!(set.is_internal("x@mail.acme.example"));
    assert!(!set.is_internal("x@notacme.example"));
    assert_eq!(RuleSet::load("").unwrap().rules().len(), 0);
}

#[test]
fn the_example_gateway_file_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/gateway.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let set = RuleSet::load(&text).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(set.rules().len(), 5);
    assert_eq!(set.templates().len(), 1);
}

#[test]
fn sizes() {
    let table = [
        ("10MB", Some(10 << 20)),
        ("10 mb", Some(10 << 20)),
        ("512KB", Some(512 << 10)),
        ("1GiB", Some(1 << 30)),
        ("100", Some(100)),
        ("7B", Some(7)),
        ("1.5MB", None),
        ("MB", None),
        ("10XB", None),
        ("99999999999999GB", None),
    ];
    for (s, want) in table {
        assert_eq!(parse_size(s), want, "{s}");
    }
}

#[test]
fn a_missing_name_is_reported_once() {
    one_error(
        "[[rules]]\nname = 5\n[rules.actions]\nstop = true\n",
        2,
        8,
        "rule name must be a string",
    );
    one_error(
        "[[rules]]\n[rules.actions]\nstop = true\n",
        1,
        1,
        "a rule has no `name`",
    );
    one_error(
        "[[templates]]\nrights = [\"view\"]\n",
        1,
        1,
        "a template has no `name`",
    );
}
