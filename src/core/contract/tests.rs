//! The published types (`llm-stream-guard.d.ts`) checked against the Rust types whose
//! serialized form JavaScript receives: every field's name, whether it may be absent, and its
//! type (coarsely: string, number, boolean, arrays of, objects named, unions of these; a string
//! literal union such as `TimeoutPhase` counts as `string`).
//!
//! The Rust side is `ts-rs`'s rendering of each type (it honours the serde renames, skips and
//! `skip_serializing_if`); the TypeScript side is read from the `.d.ts` with a small reader of
//! its `interface` and `type` declarations. A field JavaScript sees that Rust does not make
//! (the answer text the driver joined, a `cause` that is a JavaScript value, the error's
//! `name`) is listed below as set by the driver, and must be in the `.d.ts` too.

use crate::core::answer::ToolCall;
use crate::core::call::AttemptRecord;
use crate::core::chunk::Usage;
use crate::core::contract::{ErrorKind, LiveResources};
use crate::core::deadline::{TimeoutOverrides, Timeouts};
use crate::core::events::GuardEvent;
use crate::core::guard::state::{BreakerStats, LearnedTimeouts, ProviderStats, Quantiles};
use crate::core::machine::{
    ContinuationInfo, GenerationError, GenerationResult, PartialCause, ProviderConfig, Stats,
};
use crate::core::options::{
    ADAPTIVE_FIELDS, BREAKER_FIELDS, GENERATE_OPTIONS, GENERATE_REQUEST_OPTIONS,
    GUARD_FETCH_OPTIONS, GUARD_OPTIONS, HEDGE_FIELDS, ON_CUT_NAMES, PROVIDER_FIELDS, RETRY_FIELDS,
    TIMEOUT_FIELDS,
};
use crate::core::policy::RetryPolicy;
use std::collections::{BTreeMap, BTreeSet};
use ts_rs::{Config, TS};

const DTS: &str = concat!(
    include_str!("../../web/llm-stream-guard.d.ts"),
    include_str!("../../web/stream.d.ts"),
    include_str!("../../web/guard.d.ts")
);

/// One field of an object type.
#[derive(Debug, Clone, PartialEq)]
struct Field {
    optional: bool,
    ty: String,
}

type Fields = BTreeMap<String, Field>;

/// The declarations of a TypeScript file: interfaces (by name: their fields) and type aliases
/// (by name: their right-hand side).
#[derive(Default)]
struct Declarations {
    interfaces: BTreeMap<String, Fields>,
    aliases: BTreeMap<String, String>,
}

/// `/* … */` and `// …` comments removed.
fn without_comments(source: &str) -> String {
    let mut out = String::new();
    let mut rest = source;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                out.push_str(&rest[..b]);
                let end = rest[b..].find("*/").expect("unclosed comment") + b + 2;
                rest = &rest[end..];
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                rest = &rest[l..];
                rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// Splits `text` at every `separator` outside brackets, braces, parentheses, angle brackets
/// and string literals (an arrow's `=>` closes nothing).
fn split_top(text: &str, separators: &[char]) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut current = String::new();
    let mut previous = ' ';
    for c in text.chars() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '{' | '[' | '(' | '<' => depth += 1,
                '}' | ']' | ')' => depth -= 1,
                '>' if previous != '=' => depth -= 1,
                _ if depth == 0 && separators.contains(&c) => {
                    parts.push(std::mem::take(&mut current));
                    previous = c;
                    continue;
                }
                _ => {}
            },
        }
        current.push(c);
        previous = c;
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|part| part.trim().to_owned())
        .filter(|part| !part.is_empty())
        .collect()
}

/// The fields of an object type's body (`a: string; b?: number` or `a: string, b?: number`);
/// methods are left out.
fn fields(body: &str) -> Fields {
    let mut out = Fields::new();
    for member in split_top(body, &[';', ',', '\n']) {
        let parts = split_top(&member, &[':']);
        let Some(name) = parts.first() else { continue };
        if name.contains('(') || parts.len() < 2 {
            continue; // a method
        }
        let ty = member[member.find(':').unwrap() + 1..].trim().to_owned();
        let name = name.trim_start_matches("readonly ").trim();
        let optional = name.ends_with('?');
        let name = name.trim_end_matches('?').trim_matches('"');
        out.insert(name.to_owned(), Field { optional, ty });
    }
    out
}

/// The text between the bracket at `open` and its match.
fn enclosed(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unclosed brace")
}

fn declarations(source: &str) -> Declarations {
    let text = without_comments(source);
    let mut out = Declarations::default();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let word_start = rest
            .find(|c: char| c.is_alphabetic())
            .map_or(text.len(), |i| at + i);
        let rest = &text[word_start..];
        let word: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
        let after = word_start + word.len();
        match word.as_str() {
            "interface" => {
                let open = after + text[after..].find('{').unwrap();
                let name = text[after..open].split_whitespace().next().unwrap();
                let body = enclosed(&text, open);
                out.interfaces.insert(name.to_owned(), fields(body));
                at = open + body.len() + 2;
            }
            "type" => {
                let equals = after + text[after..].find('=').unwrap();
                let name = text[after..equals].split_whitespace().next().unwrap();
                let name = name.split('<').next().unwrap();
                let body_and_rest = &text[equals + 1..];
                // The alias ends at the first `;` outside brackets.
                let body = split_top(body_and_rest, &[';'])
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                let end = equals + 1 + body_and_rest.find(body.as_str()).unwrap() + body.len();
                out.aliases.insert(name.to_owned(), body);
                at = end;
            }
            "class" | "function" | "global" => {
                // Skip the declaration's body (or signature) as a whole.
                let open = text[after..]
                    .find(['{', ';'])
                    .map_or(text.len(), |i| after + i);
                at = match text[open..].starts_with('{') {
                    true => open + enclosed(&text, open).len() + 2,
                    false => open + 1,
                };
            }
            _ => at = after.max(word_start + 1),
        }
    }
    out
}

/// A type reduced to the kinds of values it admits: `string`, `number`, `boolean`, `null`,
/// `unknown`, `bigint`, `object` (a record or an inline object), `array<…>`, or an interface's
/// name; aliases are resolved.
fn kinds(ty: &str, known: &Declarations) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for member in split_top(ty, &['|']) {
        let member = member.trim();
        let member = match member.strip_prefix('(').and_then(|m| m.strip_suffix(')')) {
            Some(inner) if !member.ends_with("[]") => inner.trim(),
            _ => member,
        };
        let array_of = member
            .strip_suffix("[]")
            .map(|inner| inner.trim_start_matches('(').trim_end_matches(')'))
            .or_else(|| {
                member
                    .strip_prefix("Array<")
                    .and_then(|m| m.strip_suffix('>'))
            });
        if let Some(inner) = array_of {
            let inner: Vec<String> = kinds(inner, known).into_iter().collect();
            out.insert(format!("array<{}>", inner.join("|")));
            continue;
        }
        let kind = match member {
            "string" | "number" | "boolean" | "null" | "unknown" | "bigint" => member.to_owned(),
            "true" | "false" => "boolean".into(),
            _ if member.starts_with('"') => "string".into(),
            _ if member.parse::<f64>().is_ok() => "number".into(),
            _ if member.starts_with('{') || member.starts_with("Record<") => "object".into(),
            _ => match known.aliases.get(member) {
                Some(body) => {
                    out.extend(kinds(body, known));
                    continue;
                }
                None => member.to_owned(),
            },
        };
        out.insert(kind);
    }
    out
}

/// The fields of a type as `ts-rs` renders it (`{ a: string, b?: number, }`).
fn rust_fields(rendered: &str) -> Fields {
    let rendered = without_comments(rendered);
    let body = rendered.trim();
    let body = body.strip_prefix('{').and_then(|b| b.strip_suffix('}'));
    fields(body.unwrap_or_else(|| panic!("not an object type: {rendered}")))
}

/// What differs between a Rust type and its TypeScript interface.
struct Check<'a> {
    known: &'a Declarations,
    problems: Vec<String>,
}

impl Check<'_> {
    /// `rust` against the interface `name`; `by_driver` lists the fields JavaScript sees that
    /// the driver sets (not in the Rust type), `loose` the fields whose optionality may differ
    /// (with the reason in a comment where it is called). `partial` treats every TypeScript
    /// field as optional-insensitive (a Rust type of resolved settings against its options).
    fn compare(
        &mut self,
        rust_name: &str,
        rust: &Fields,
        name: &str,
        by_driver: &[&str],
        loose: &[&str],
        partial: bool,
    ) {
        let Some(declared) = self.known.interfaces.get(name) else {
            self.problems
                .push(format!("{name} (for {rust_name}) is not declared"));
            return;
        };
        for (field, theirs) in declared {
            let Some(ours) = rust.get(field) else {
                if !by_driver.contains(&field.as_str()) {
                    self.problems.push(format!(
                        "{name}.{field} is declared in the .d.ts but {rust_name} has no such field"
                    ));
                }
                continue;
            };
            if !partial && ours.optional != theirs.optional && !loose.contains(&field.as_str()) {
                self.problems.push(format!(
                    "{name}.{field}: optional in Rust {}, in the .d.ts {}",
                    ours.optional, theirs.optional
                ));
            }
            let (a, b) = (kinds(&ours.ty, self.known), kinds(&theirs.ty, self.known));
            if a != b {
                self.problems.push(format!(
                    "{name}.{field}: Rust `{}` is {a:?}, the .d.ts `{}` is {b:?}",
                    ours.ty, theirs.ty
                ));
            }
        }
        for field in rust.keys() {
            if !declared.contains_key(field) {
                self.problems.push(format!(
                    "{rust_name}.{field} is not declared in the .d.ts interface {name}"
                ));
            }
        }
        for field in by_driver {
            if !declared.contains_key(*field) {
                self.problems.push(format!(
                    "{name}.{field} (set by the driver) is not declared in the .d.ts"
                ));
            }
        }
    }

    /// The names a checker of options accepts against the interface's field names.
    fn names(&mut self, list: &str, names: &[&str], name: &str) {
        let declared: BTreeSet<&str> = match self.known.interfaces.get(name) {
            Some(fields) => fields.keys().map(String::as_str).collect(),
            None => BTreeSet::new(),
        };
        let accepted: BTreeSet<&str> = names.iter().copied().collect();
        if declared != accepted {
            self.problems.push(format!(
                "{list} accepts {accepted:?} but the .d.ts interface {name} declares {declared:?}"
            ));
        }
    }
}

fn check<T: TS>(check: &mut Check, name: &str, by_driver: &[&str], loose: &[&str]) {
    let rendered = T::inline(&Config::default());
    let rust = T::ident(&Config::default());
    check.compare(
        &rust,
        &rust_fields(&rendered),
        name,
        by_driver,
        loose,
        false,
    );
}

/// Every check, as a list of problems (empty: the types match).
fn problems(source: &str) -> Vec<String> {
    let known = declarations(source);
    let mut c = Check {
        known: &known,
        problems: Vec::new(),
    };
    // GuardError: `name` is set by the driver (`Error`'s own), `partialText` is the text the
    // driver joined, `cause` a JavaScript value. `provider` is optional in the types because
    // a `config` error (nothing was sent) has none; every generation error has one.
    check::<GenerationError>(
        &mut c,
        "GuardError",
        &["name", "partialText", "cause"],
        &["provider"],
    );
    check::<GenerationResult>(&mut c, "GenerateResult", &["text"], &[]);
    check::<PartialCause>(&mut c, "PartialCause", &["cause"], &[]);
    check::<ContinuationInfo>(&mut c, "Continuation", &[], &[]);
    check::<AttemptRecord>(&mut c, "Attempt", &[], &[]);
    check::<Stats>(&mut c, "GenerateStats", &[], &[]);
    check::<Usage>(&mut c, "Usage", &[], &[]);
    check::<ToolCall>(&mut c, "ToolCall", &[], &[]);
    check::<Timeouts>(&mut c, "Timeouts", &[], &[]);
    check::<LiveResources>(&mut c, "LiveResources", &[], &[]);
    check::<ProviderStats>(&mut c, "ProviderStats", &[], &[]);
    check::<Quantiles>(&mut c, "Quantiles", &[], &[]);
    check::<LearnedTimeouts>(&mut c, "LearnedTimeouts", &[], &[]);
    check::<BreakerStats>(&mut c, "BreakerStats", &[], &[]);
    // Overrides are `Partial<Timeouts>` in the options.
    let overrides = rust_fields(&TimeoutOverrides::inline(&Config::default()));
    let mut partial_timeouts = known
        .interfaces
        .get("Timeouts")
        .cloned()
        .unwrap_or_default();
    partial_timeouts
        .values_mut()
        .for_each(|field| field.optional = true);
    let mut with_partial = Declarations {
        interfaces: known.interfaces.clone(),
        aliases: known.aliases.clone(),
    };
    with_partial
        .interfaces
        .insert("Partial<Timeouts>".into(), partial_timeouts);
    let mut p = Check {
        known: &with_partial,
        problems: Vec::new(),
    };
    p.compare(
        "TimeoutOverrides",
        &overrides,
        "Partial<Timeouts>",
        &[],
        &[],
        false,
    );
    c.problems.append(&mut p.problems);
    // A resolved provider against the option that sets it.
    let provider = rust_fields(&ProviderConfig::inline(&Config::default()));
    c.compare("ProviderConfig", &provider, "Provider", &[], &[], true);
    // The resolved retry settings against the options that set them.
    let retry = rust_fields(&RetryPolicy::inline(&Config::default()));
    c.compare("RetryPolicy", &retry, "RetryOptions", &[], &[], true);
    // The names the option reader accepts, at every level with fixed names.
    c.names("GENERATE_OPTIONS", GENERATE_OPTIONS, "GenerateOptions");
    c.names("PROVIDER_FIELDS", PROVIDER_FIELDS, "Provider");
    c.names("TIMEOUT_FIELDS", TIMEOUT_FIELDS, "Timeouts");
    c.names("RETRY_FIELDS", RETRY_FIELDS, "RetryOptions");
    c.names(
        "GUARD_FETCH_OPTIONS",
        GUARD_FETCH_OPTIONS,
        "GuardFetchOptions",
    );
    c.names("GUARD_OPTIONS", GUARD_OPTIONS, "GuardOptions");
    c.names("ADAPTIVE_FIELDS", ADAPTIVE_FIELDS, "AdaptiveOptions");
    c.names("BREAKER_FIELDS", BREAKER_FIELDS, "BreakerOptions");
    c.names("HEDGE_FIELDS", HEDGE_FIELDS, "HedgeOptions");
    request_names(&mut c);
    on_cut_names(&mut c);
    events(&mut c);
    literals::<ErrorKind>(&mut c, "GuardErrorKind");
    c.problems
}

/// The names a guard's call accepts against `GenerateRequest`: `GenerateOptions` without the
/// names its `Omit<…>` lists.
fn request_names(c: &mut Check) {
    let alias = c
        .known
        .aliases
        .get("GenerateRequest")
        .cloned()
        .unwrap_or_default();
    let omitted = alias
        .strip_prefix("Omit<GenerateOptions,")
        .and_then(|rest| rest.strip_suffix('>'))
        .map(literal_set)
        .unwrap_or_default();
    let declared: BTreeSet<String> = c
        .known
        .interfaces
        .get("GenerateOptions")
        .map(|fields| {
            fields
                .keys()
                .filter(|k| !omitted.contains(*k))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let accepted: BTreeSet<String> = GENERATE_REQUEST_OPTIONS
        .iter()
        .map(|n| (*n).to_owned())
        .collect();
    if omitted.is_empty() || declared != accepted {
        c.problems.push(format!(
            "GENERATE_REQUEST_OPTIONS is {accepted:?} but the .d.ts GenerateRequest is {declared:?}"
        ));
    }
}

/// The values `guardFetch()` reads for `onCut` against the field's union in the `.d.ts`.
fn on_cut_names(c: &mut Check) {
    let ours: BTreeSet<String> = ON_CUT_NAMES.iter().map(|(n, _)| (*n).to_owned()).collect();
    let declared = c
        .known
        .interfaces
        .get("GuardFetchOptions")
        .and_then(|fields| fields.get("onCut"))
        .map(|field| literal_set(&field.ty))
        .unwrap_or_default();
    if ours != declared {
        c.problems.push(format!(
            "ON_CUT_NAMES is {ours:?} but the .d.ts GuardFetchOptions.onCut is {declared:?}"
        ));
    }
}

/// The string literals of a union (`"a" | "b"`).
fn literal_set(union: &str) -> BTreeSet<String> {
    split_top(union, &['|'])
        .into_iter()
        .map(|member| member.trim_matches('"').to_owned())
        .collect()
}

/// A Rust enum of names against the `.d.ts` union of string literals `name`, exactly.
fn literals<T: TS>(c: &mut Check, name: &str) {
    let ours = literal_set(&T::inline(&Config::default()));
    let theirs = literal_set(c.known.aliases.get(name).map_or("", String::as_str));
    if ours != theirs {
        c.problems.push(format!(
            "{} is {ours:?} but the .d.ts {name} is {theirs:?}",
            T::ident(&Config::default())
        ));
    }
}

/// Every variant of `GuardEvent` against the member of the `.d.ts` union with its `type`.
fn events(c: &mut Check) {
    let rendered = without_comments(&GuardEvent::inline(&Config::default()));
    let mut ours: BTreeMap<String, Fields> = BTreeMap::new();
    for variant in split_top(&rendered, &['|']) {
        let fields = rust_fields(&variant);
        let tag = fields
            .get("type")
            .expect("a type field")
            .ty
            .trim_matches('"');
        ours.insert(tag.to_owned(), fields);
    }
    let union = c
        .known
        .aliases
        .get("GuardEvent")
        .cloned()
        .unwrap_or_default();
    let mut declared: BTreeMap<String, String> = BTreeMap::new();
    for member in split_top(&union, &['|']) {
        let tag = c
            .known
            .interfaces
            .get(&member)
            .and_then(|fields| fields.get("type"))
            .map(|field| field.ty.trim_matches('"').to_owned());
        match tag {
            Some(tag) => {
                declared.insert(tag, member);
            }
            None => c
                .problems
                .push(format!("GuardEvent member {member} has no `type` literal")),
        }
    }
    for (tag, fields) in &ours {
        match declared.get(tag) {
            Some(name) => {
                let name = name.clone();
                c.compare(
                    &format!("GuardEvent `{tag}`"),
                    fields,
                    &name,
                    &[],
                    &[],
                    false,
                );
            }
            None => c.problems.push(format!(
                "GuardEvent `{tag}` is not a member of the .d.ts union GuardEvent"
            )),
        }
    }
    for (tag, name) in &declared {
        if !ours.contains_key(tag) {
            c.problems.push(format!(
                "the .d.ts event {name} (`{tag}`) is not a GuardEvent variant"
            ));
        }
    }
}

#[test]
fn the_published_types_match_the_rust_types() {
    let problems = problems(DTS);
    assert!(
        problems.is_empty(),
        "llm-stream-guard.d.ts and the Rust types differ:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_reader_sees_every_declaration_it_checks() {
    let known = declarations(DTS);
    for name in [
        "GenerateOptions",
        "GuardFetchOptions",
        "Provider",
        "Timeouts",
        "RetryOptions",
        "GenerateResult",
        "GuardError",
        "PartialCause",
        "Attempt",
        "GenerateStats",
        "Usage",
        "ToolCall",
        "DoneEvent",
    ] {
        assert!(known.interfaces.contains_key(name), "{name}");
    }
    assert_eq!(
        split_top(&known.aliases["GuardEvent"], &['|']).len(),
        16,
        "{:?}",
        known.aliases["GuardEvent"]
    );
    let attempt = &known.interfaces["Attempt"];
    assert_eq!(
        attempt["status"],
        Field {
            optional: true,
            ty: "number".into()
        }
    );
    assert_eq!(
        kinds(&attempt["outcome"].ty, &known),
        BTreeSet::from(["string".to_owned()])
    );
    assert_eq!(kinds("Attempt[]", &known), kinds("Array<Attempt>", &known));
}

/// The check catches what it is for: a field added, removed, retyped or made optional on one
/// side only (here on the `.d.ts` side, as the Rust types cannot change in a test).
#[test]
fn a_changed_field_is_reported() {
    let cases = [
        // A field the Rust type lacks.
        (
            "  /** How long the attempt took, in milliseconds. */\n  elapsedMs: number;\n}",
            "  elapsedMs: number;\n  retries: number;\n}",
            "Attempt.retries is declared in the .d.ts but Attempt has no such field",
        ),
        // A field the .d.ts lacks.
        (
            "  /** Tokens in the prompt. */\n  prompt_tokens: number;\n",
            "",
            "Usage.prompt_tokens is not declared in the .d.ts interface Usage",
        ),
        // Another type.
        (
            "  partial: boolean;\n  /** Milliseconds since `generate()` was called. */\n  elapsedMs: number;\n}\n\n/** One event dispatched",
            "  partial: string;\n  elapsedMs: number;\n}\n\n/** One event dispatched",
            "DoneEvent.partial: Rust `boolean`",
        ),
        // Optional on one side only.
        (
            "  /** The finish reason the provider sent (`\"stop\"`, `\"length\"`, `\"tool_calls\"`, ...), if any. */\n  finishReason?: string;",
            "  finishReason: string;",
            "GenerateResult.finishReason: optional in Rust true, in the .d.ts false",
        ),
        // An event variant the union does not list.
        (
            "  | UpstreamEvent\n",
            "",
            "GuardEvent `upstream-event` is not a member",
        ),
        // A provider option of another type.
        (
            "  /** This provider's own retry allowance, over `retry.maxRetries`. */\n  maxRetries?: number;",
            "  maxRetries?: string;",
            "Provider.maxRetries: Rust `number`",
        ),
        // A kind the types do not list.
        (
            "  | \"config\"\n  | \"unavailable\";",
            "  | \"config\";",
            "ErrorKind is",
        ),
        // A guard option, a stats field and a request option the Rust side does not have.
        (
            "  breaker?: BreakerOptions;",
            "  breaker?: BreakerOptions;\n  breakers?: BreakerOptions;",
            "GUARD_OPTIONS accepts",
        ),
        (
            "  retryInMs?: number;\n}\n\n/** A {@link Guard} left",
            "  retryInMs?: string;\n}\n\n/** A {@link Guard} left",
            "BreakerStats.retryInMs: Rust",
        ),
        (
            "\"providers\" | \"timeouts\" | \"retry\" | \"fetch\">",
            "\"providers\" | \"timeouts\" | \"fetch\">",
            "GENERATE_REQUEST_OPTIONS is",
        ),
        // An option name the reader does not accept.
        (
            "  /** Retries of the same provider before failing over to the next one. */\n  retry?: RetryOptions;",
            "  /** Retries of the same provider before failing over to the next one. */\n  retry?: RetryOptions;\n  retries?: number;",
            "GENERATE_OPTIONS accepts",
        ),
        // A guardFetch() option the reader does not accept, and an onCut it does not know.
        (
            "  onCut?: \"error\" | \"finish\";",
            "  onCut?: \"error\" | \"finish\";\n  onStall?: \"error\";",
            "GUARD_FETCH_OPTIONS accepts",
        ),
        (
            "  onCut?: \"error\" | \"finish\";",
            "  onCut?: \"error\" | \"finish\" | \"ignore\";",
            "GuardFetchOptions.onCut is",
        ),
    ];
    for (from, to, expected) in cases {
        assert_eq!(DTS.matches(from).count(), 1, "{from}");
        let changed = DTS.replace(from, to);
        let problems = problems(&changed);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected:?} not in {problems:#?}"
        );
    }
}
