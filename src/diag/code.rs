//! The stable code of every diagnostic, defined in one table.
//!
//! A code never changes meaning once released: tools and tests match on it
//! rather than on the message text. `E` codes are errors (the file is refused),
//! `W` codes warnings (the file loads). The first two digits
//! name the loader: `01` YAML syntax and shape (shared by every loader), `02`
//! rule packs (conditions, also in guards), `03` state machines, `04` action
//! specs (in rules and machines), `05` simulator scenarios, `06` the service
//! configuration file, `07` rule-pack test cases. The table of codes
//! is `docs/diagnostics.md`, generated from this one (see the `diag` tests).

use super::Severity;

/// Defines [`Code`] from one table of `Variant = "code": "description";`.
macro_rules! codes {
    ($($name:ident = $code:literal : $desc:literal;)*) => {
        /// The stable code of a diagnostic: `E` errors, `W` warnings; the first two
        /// digits name the loader (`01` YAML, `02` rules, `03` machines, `04` actions,
        /// `05` scenarios, `06` the service configuration, `07` pack tests). Every code is listed in `docs/diagnostics.md`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $(
                #[doc = concat!("`", $code, "`: ", $desc, ".")]
                $name,
            )*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$name),*];

            /// The code as shown to users, such as `E0108`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $code,)*
                }
            }

            /// What the code means, in a few words.
            pub const fn description(self) -> &'static str {
                match self {
                    $(Code::$name => $desc,)*
                }
            }
        }
    };
}

codes! {
    // ---- 01: YAML syntax and shape, shared by every loader ----
    YamlSyntax = "E0101": "the file is not valid YAML";
    YamlManyDocuments = "E0102": "the file holds more than one YAML document";
    YamlUnknownAnchor = "E0103": "an alias names an anchor that was never defined";
    YamlKeyNotString = "E0104": "a mapping key is not a plain string";
    YamlDuplicateKey = "E0105": "a mapping gives the same key twice";
    YamlNotMapping = "E0106": "a value must be a mapping";
    YamlMissingKey = "E0107": "a required key is missing";
    YamlUnknownKey = "E0108": "a key is not known here (with the closest known key)";
    YamlNotString = "E0109": "a value must be a string";
    YamlNotInteger = "E0110": "a value must be an integer";
    YamlNotBoolean = "E0111": "a value must be true or false";
    YamlBadTimestamp = "E0112": "a value must be an RFC 3339 time";
    YamlNotList = "E0113": "a value must be a list";
    YamlNotOneOf = "E0114": "a value must be one of a closed set of names";
    YamlTooLarge = "E0115": "the file nests too deep or holds too many values (aliases counted as copies)";

    // ---- 02: rule packs and conditions ----
    RuleDuplicateId = "E0201": "two rules of a pack share an id";
    RuleBadId = "E0202": "a rule id does not match [a-z0-9_-]+";
    RulePriorityRange = "E0203": "a rule priority is not between 0 and 100";
    RuleEmptyValidity = "E0204": "`valid_until` is not later than `valid_from`";
    RuleNoActions = "E0205": "a rule has an empty `actions` list";
    RuleCustomLogicMissing = "E0206": "`condition_logic: CUSTOM` without `custom_logic`";
    RuleCustomLogicUnused = "E0207": "`custom_logic` without `condition_logic: CUSTOM`";
    RuleNoConditions = "E0208": "a rule has an empty `conditions` list";
    RuleDuplicateConditionName = "E0209": "two conditions of a rule share a name";
    RuleCustomLogicCompile = "E0210": "`custom_logic` does not compile";
    RuleNotPositive = "E0211": "a rule count must be a positive integer";
    RuleBadConditionName = "E0212": "a condition name is not a usable identifier";
    RuleUnknownField = "E0213": "a condition names an unknown fact";
    RuleWindowInGuard = "E0214": "a guard uses a window fact";
    RuleWindowMissing = "E0215": "a window fact has no `time_window`";
    RuleBadWindow = "E0216": "a `time_window` is not a positive duration";
    RuleWindowNotApplicable = "E0217": "a `time_window` on a fact that is no window fact";
    RuleValueMissing = "E0218": "a condition has no `value` for an operator that needs one";
    RuleListValueNeeded = "E0219": "`in` / `not_in` with a value that is not a list";
    RuleNumberValueNeeded = "E0220": "a numeric comparison with a value that is not a number";
    RuleUnknownIndicatorType = "E0221": "an unknown viral indicator type";
    RuleUnknownEnumValue = "E0222": "a value the enumerated fact never takes";
    RuleNumericOpNeverTrue = "W0201": "a numeric comparison on a fact that is not a number";
    RuleContainsNeverTrue = "W0202": "`contains` / `not_contains` with a fact or value of a type it never holds";
    RuleTimeNeverEqual = "W0203": "a time written so that it never equals the fact";
    RuleTypesNeverEqual = "W0204": "a value of another type than its fact: never equal";

    // ---- 03: state machines (and their guards) ----
    MachineUnreadable = "E0301": "the machine file cannot be read";
    MachineEmptyName = "E0302": "`machine` is empty";
    MachineNoStates = "E0303": "`states` is empty";
    MachineDuplicateState = "E0304": "two states share a name";
    MachineUnknownState = "E0305": "`initial`, `from` or `to` names an unknown state";
    MachineDuplicateTransition = "E0306": "two transitions out of one state share a name";
    MachineTerminalExit = "E0307": "a terminal state has a transition out";
    MachineDeadEnd = "E0308": "a non-terminal state has no transition out";
    MachineUnreachable = "E0309": "a state cannot be reached from the initial state";
    MachineNoTerminal = "E0310": "no terminal state can be reached from the initial state";
    MachineStuck = "E0311": "a reachable state cannot reach any terminal state";
    MachineTimeoutOnTerminal = "E0312": "a timeout on a terminal state";
    MachineTimeoutForeignTransition = "E0313": "a timeout names a transition of another state";
    MachineTimeoutUnknownTransition = "E0314": "a timeout names an unknown transition";
    MachineBadStateName = "E0315": "a state name uses characters other than letters, digits, `_`, `-`";
    MachineProgressRange = "E0316": "`progress` is not between 0 and 100";
    MachineUnknownStatus = "E0317": "an unknown `automation_status`";
    MachineBadTimeout = "E0318": "a timeout's `after` is not a positive duration";
    MachineTimeoutTwoActions = "E0319": "a timeout has both `transition` and `escalate`";
    MachineTimeoutNoAction = "E0320": "a timeout has neither `transition` nor `escalate`";
    MachineEmptyEscalation = "E0321": "`escalate` sets neither `new_priority` nor `new_impact`";
    MachineEmptyTransitionName = "E0322": "a transition `name` is empty";
    MachineEmptyFrom = "E0323": "a transition's `from` list is empty";
    MachineGuardAndScript = "E0324": "a transition has both `guard` and `guard_script`";
    MachineEmptyGuard = "E0325": "a `guard` list is empty";
    MachineGuardScriptCompile = "E0326": "a `guard_script` does not compile";
    MachineUnknownWait = "E0327": "an unknown `waits_for` value";
    MachineWaitOnFinalState = "E0328": "`waits_for` on a terminal or manual-review state";
    MachineWaitWithoutNext = "E0329": "a waiting state has no automatic next state";
    MachineGuardedTimeout = "W0301": "a timeout's transition has a guard that may reject it";

    // ---- 04: action specs ----
    ActionUnknownType = "E0401": "an unknown (or unregistered) action type";
    ActionParametersNotMapping = "E0402": "`parameters` is not a mapping";
    ActionEscalationEmpty = "E0403": "`escalate_priority` sets neither `new_priority` nor `new_impact`";
    ActionEscalationValue = "E0404": "`new_priority` or `new_impact` is not a known value";
    ActionNotPositive = "E0405": "an action count or time must be a positive integer";
    ActionNegative = "E0406": "a retry delay is negative";
    ActionUnknownBackoff = "E0407": "an unknown `backoff_strategy`";
    ActionDelayOrder = "E0408": "`max_delay_ms` is below `initial_delay_ms`";

    // ---- 05: simulator scenarios ----
    ScenarioUnreadable = "E0501": "the scenario could not be read";
    ScenarioNegative = "E0502": "a seed or a stock count is negative";
    ScenarioTooShort = "E0503": "`duration` is under one minute";
    ScenarioProductRange = "E0504": "a spike or stock entry names a product rank beyond `products`";
    ScenarioNotNumber = "E0505": "a value must be a number";
    ScenarioOutOfRange = "E0506": "a number is outside its allowed range";
    ScenarioNotPositive = "E0507": "a count must be > 0";
    ScenarioBadDuration = "E0508": "a duration is malformed";
    ScenarioProfileLength = "E0509": "`daily_profile` does not list 24 weights";
    ScenarioProfileZero = "E0510": "`daily_profile` has no positive weight";
    ScenarioP99BelowMedian = "E0511": "a distribution's p99 is below its median";
    ScenarioTierSum = "E0512": "`tiers` shares do not add up to 1";
    ScenarioSharesNotMapping = "E0513": "a share table is not a mapping";
    ScenarioSharesZero = "E0514": "a share table has no positive share";
    ScenarioRangeInverted = "E0515": "a range's max is below its min";
    ScenarioBadTimeOfDay = "E0516": "a time of day is not `HH:MM` (00:00 to 24:00)";
    ScenarioEmptyShift = "E0517": "a packing shift starts and ends at the same time";
    ScenarioCancelBeforeShipBy = "E0518": "`auto_cancel_after` is not longer than `ship_by`";

    // ---- 06: the service configuration file (`creatorflow serve --config`) ----
    ConfigUnreadable = "E0601": "the configuration file cannot be read";
    ConfigEnvMissing = "E0602": "a `${NAME}` value names an environment variable that is unset or empty";
    ConfigEnvNotWhole = "E0603": "`${NAME}` is not the whole value";
    ConfigBadDuration = "E0604": "a duration is malformed";
    ConfigBadAddress = "E0605": "`listen` is not an address such as 0.0.0.0:8080";
    ConfigBadStore = "E0606": "`store` is not a store URL (`memory:`, `sqlite://PATH`, `postgres://…`)";
    ConfigBadUrl = "E0607": "a URL is not an http:// or https:// URL";
    ConfigEmpty = "E0608": "a tenant id, shop id or token is empty";
    ConfigDuplicateTenant = "E0609": "two tenants share an id";
    ConfigShopTwoTenants = "E0610": "a shop is listed under two tenants";
    ConfigMissingPath = "E0611": "a `rules` directory or `machine` file does not exist";
    ConfigUnknownActionType = "E0612": "`actions` names an unknown action type";
    ConfigEngineAction = "E0613": "`escalate_priority` or `escalate_to_manual` is bound (the engine carries them out)";
    ConfigUnknownBinding = "E0614": "a binding is not exactly one of `http`, `tiktok`, `log`, `simulated`";
    ConfigUnknownTikTokOp = "E0615": "a `tiktok` binding names an unknown operation";
    ConfigTikTokNotSet = "E0616": "a `tiktok` binding without a `tiktok` section (app key and secret)";
    ConfigUnbound = "E0617": "an action type the machine or a pack uses is bound to nothing";

    // ---- 07: rule-pack test cases (`creatorflow test`) ----
    CaseUnreadable = "E0701": "a case file cannot be read";
    CaseNoCases = "E0702": "a case file has an empty `cases` list";
    CaseBadOrder = "E0703": "an `order` or `history` entry is not a valid order (the `eval` format)";
    CaseUnknownRule = "E0704": "`expect` names a rule the pack does not have";
    CaseUnknownAction = "E0705": "`expect` names an action type no rule of the pack takes";
    CaseContradiction = "E0706": "`expect` asks a rule both to fire and not to fire";
    CaseDuplicateName = "E0707": "two cases share a name";
    CaseNegative = "E0708": "`errors` is negative";
    CaseExpectsNothing = "W0701": "a case's `expect` checks nothing";
}

impl Code {
    /// Error for `E` codes, warning for `W` codes.
    pub const fn severity(self) -> Severity {
        match self.as_str().as_bytes()[0] {
            b'W' => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const GROUPS: [&str; 7] = ["01", "02", "03", "04", "05", "06", "07"];

    /// The code table as Markdown: one row per code, in table order.
    fn markdown_table() -> String {
        let mut out = String::from("| code | severity | meaning |\n|---|---|---|\n");
        for c in Code::ALL {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                c.as_str(),
                c.severity(),
                c.description().replace('|', "\\|")
            ));
        }
        out
    }

    #[test]
    fn codes_are_unique_well_formed_and_described() {
        let mut seen = HashSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} is used twice");
            let b = s.as_bytes();
            assert!(
                b.len() == 5
                    && (b[0] == b'E' || b[0] == b'W')
                    && GROUPS.contains(&&s[1..3])
                    && s[1..].bytes().all(|d| d.is_ascii_digit()),
                "{s} is not E0ggnn / W0ggnn with a known group"
            );
            assert!(!c.description().trim().is_empty(), "{s} has no description");
        }
    }

    /// `docs/diagnostics.md` holds the generated table; `UPDATE_EXPECT=1` rewrites it.
    #[test]
    fn the_documented_table_is_the_code_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/diagnostics.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        let table = markdown_table();
        const MARK: &str = "<!-- generated from src/diag/code.rs -->\n";
        let head = doc.split(MARK).next().unwrap_or_default();
        let expected = format!("{head}{MARK}{table}");
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(path, &expected).expect("write docs/diagnostics.md");
            return;
        }
        assert!(
            doc == expected,
            "docs/diagnostics.md is out of date; run with UPDATE_EXPECT=1"
        );
    }
}
