//! Template syntax, checked at save time, and rendering, checked at send time.
//!
//! `{customer_name}` is a variable; `{{` and `}}` are a literal brace. Only the variables of
//! [`Variable`] exist: a template naming another is refused when saved, so a typo cannot
//! reach a debtor. At render every variable the template uses needs a value (blank counts as
//! none); the answer names each one that is missing or malformed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Language, dates, money};
use crate::domain::{Currency, MAX_BODY_CHARS};

/// The values a caller gives, by variable name. Names no template uses are ignored.
pub type Vars = BTreeMap<String, String>;

/// The variables a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    CustomerName,
    /// Formatted with its currency: `TZS 20,000`, `KES 1,500.00`, `USD 8.00`.
    Amount,
    /// The ISO code (`TZS`); also the currency `{amount}` is formatted in. Defaults to the
    /// company's.
    Currency,
    /// Given as an ISO date, written in the template's language (`24/11/2026`, `24 Nov 2026`).
    DueDate,
    InvoiceNumber,
    /// Defaults to the company's name.
    CompanyName,
    /// Defaults to the company's payment link, if it has one.
    PaymentLink,
}

impl Variable {
    pub const ALL: [Variable; 7] = [
        Variable::CustomerName,
        Variable::Amount,
        Variable::Currency,
        Variable::DueDate,
        Variable::InvoiceNumber,
        Variable::CompanyName,
        Variable::PaymentLink,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variable::CustomerName => "customer_name",
            Variable::Amount => "amount",
            Variable::Currency => "currency",
            Variable::DueDate => "due_date",
            Variable::InvoiceNumber => "invoice_number",
            Variable::CompanyName => "company_name",
            Variable::PaymentLink => "payment_link",
        }
    }

    pub fn from_name(name: &str) -> Option<Variable> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

impl std::fmt::Display for Variable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{{}}}", self.name())
    }
}

/// Why a template cannot be saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("the template is empty")]
    Empty,
    #[error("the template has {0} characters; at most {MAX_BODY_CHARS} are allowed")]
    TooLong(usize),
    #[error("unknown variable {{{0}}}; the variables are {known}", known = known())]
    UnknownVariable(String),
    #[error("a '{{' at character {0} is never closed; write {{{{ for a literal brace")]
    Unclosed(usize),
    #[error("a '}}' at character {0} closes nothing; write }}}} for a literal brace")]
    StrayClose(usize),
}

fn known() -> String {
    Variable::ALL
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What is wrong with one variable's value at render time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing,
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match &self.problem {
    Problem::Missing => format!("no value for {}", self.variable),
    Problem::Invalid(why) => format!("bad value for {}: {why}", self.variable),
})]
pub struct RenderError {
    pub variable: Variable,
    pub problem: Problem,
}

/// What the service knows itself, used when the caller gives no value.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub language: Language,
    pub company_name: &'a str,
    pub currency: Currency,
    pub payment_link: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Variable),
}

/// A checked template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    body: String,
    parts: Vec<Part>,
}

impl Template {
    /// Checks a template's text; every problem is reported, not just the first.
    pub fn parse(body: &str) -> Result<Template, Vec<SyntaxError>> {
        if body.trim().is_empty() {
            return Err(vec![SyntaxError::Empty]);
        }
        let mut errors = Vec::new();
        let chars = body.chars().count();
        if chars > MAX_BODY_CHARS {
            errors.push(SyntaxError::TooLong(chars));
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut it = body.chars().enumerate().peekable();
        while let Some((at, c)) = it.next() {
            match c {
                '{' if it.peek().map(|p| p.1) == Some('{') => {
                    it.next();
                    text.push('{');
                }
                '}' if it.peek().map(|p| p.1) == Some('}') => {
                    it.next();
                    text.push('}');
                }
                '}' => errors.push(SyntaxError::StrayClose(at + 1)),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    while let Some(&(_, n)) = it.peek() {
                        if n == '{' {
                            break;
                        }
                        it.next();
                        if n == '}' {
                            closed = true;
                            break;
                        }
                        name.push(n);
                    }
                    if !closed {
                        errors.push(SyntaxError::Unclosed(at + 1));
                        continue;
                    }
                    match Variable::from_name(&name) {
                        Some(v) => {
                            if !text.is_empty() {
                                parts.push(Part::Text(std::mem::take(&mut text)));
                            }
                            parts.push(Part::Var(v));
                        }
                        None => errors.push(SyntaxError::UnknownVariable(name)),
                    }
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if errors.is_empty() {
            Ok(Template {
                body: body.to_string(),
                parts,
            })
        } else {
            Err(errors)
        }
    }

    /// The text as written (what is stored).
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The variables used, each once, in order of first use.
    pub fn variables(&self) -> Vec<Variable> {
        let mut out = Vec::new();
        for p in &self.parts {
            if let Part::Var(v) = p
                && !out.contains(v)
            {
                out.push(*v);
            }
        }
        out
    }

    /// The fixed text alone (what the template costs before its values).
    pub fn fixed_text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                Part::Var(_) => None,
            })
            .collect()
    }

    /// The message text, or every variable whose value is missing or malformed.
    pub fn render(&self, vars: &Vars, ctx: &Context<'_>) -> Result<String, Vec<RenderError>> {
        let mut values: BTreeMap<Variable, String> = BTreeMap::new();
        let mut errors = Vec::new();
        for v in self.variables() {
            match value(v, vars, ctx) {
                Ok(s) => {
                    values.insert(v, s);
                }
                Err(problem) => errors.push(RenderError {
                    variable: v,
                    problem,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(&values[v]),
            }
        }
        Ok(out)
    }
}

/// The caller's value, trimmed; blank counts as none.
fn given(vars: &Vars, v: Variable) -> Option<&str> {
    vars.get(v.name())
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
}

fn currency(vars: &Vars, ctx: &Context<'_>) -> Result<Currency, Problem> {
    match given(vars, Variable::Currency) {
        None => Ok(ctx.currency),
        Some(code) => code
            .to_ascii_uppercase()
            .parse()
            .map_err(|e: crate::domain::UnknownCurrency| Problem::Invalid(e.to_string())),
    }
}

fn value(v: Variable, vars: &Vars, ctx: &Context<'_>) -> Result<String, Problem> {
    let raw = given(vars, v);
    match v {
        Variable::Amount => {
            let amount =
                money::parse_amount(raw.ok_or(Problem::Missing)?).map_err(Problem::Invalid)?;
            let currency = currency(vars, ctx).map_err(|_| {
                Problem::Invalid("the {currency} given with it is not USD, TZS or KES".into())
            })?;
            Ok(money::format(amount, currency))
        }
        Variable::Currency => currency(vars, ctx).map(|c| c.code().to_string()),
        Variable::DueDate => dates::parse(raw.ok_or(Problem::Missing)?)
            .map(|d| dates::format(d, ctx.language))
            .map_err(Problem::Invalid),
        Variable::CompanyName => Ok(raw.unwrap_or(ctx.company_name).to_string()),
        Variable::PaymentLink => raw
            .or(ctx.payment_link.map(str::trim).filter(|l| !l.is_empty()))
            .map(str::to_string)
            .ok_or(Problem::Missing),
        Variable::CustomerName | Variable::InvoiceNumber => {
            raw.map(str::to_string).ok_or(Problem::Missing)
        }
    }
}

/// Values as JSON gives them: strings, and numbers as written (`20000`); `null` is no value.
/// Anything else is refused, naming the key.
pub fn vars_from_json(map: &serde_json::Map<String, serde_json::Value>) -> Result<Vars, String> {
    let mut out = Vars::new();
    for (k, v) in map {
        match v {
            serde_json::Value::String(s) => {
                out.insert(k.clone(), s.clone());
            }
            serde_json::Value::Number(n) => {
                out.insert(k.clone(), n.to_string());
            }
            serde_json::Value::Null => {}
            _ => return Err(format!("vars.{k} must be a string or a number")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(language: Language) -> Context<'static> {
        Context {
            language,
            company_name: "Duka la Mama",
            currency: Currency::TZS,
            payment_link: None,
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_every_variable_formatted() {
        let t = Template::parse(
            "{customer_name}: {amount} ({currency}) due {due_date}, {invoice_number}, {payment_link}. {company_name} {{ok}}",
        )
        .unwrap();
        let v = vars(&[
            ("customer_name", "Juma"),
            ("amount", "20000"),
            ("due_date", "2026-11-24"),
            ("invoice_number", "INV-7"),
            ("payment_link", "https://pay.example/7"),
            ("unused", "ignored"),
        ]);
        assert_eq!(
            t.render(&v, &ctx(Language::Sw)).unwrap(),
            "Juma: TZS 20,000 (TZS) due 24/11/2026, INV-7, https://pay.example/7. Duka la Mama {ok}"
        );
        let mut v = v;
        v.insert("currency".into(), "kes".into());
        v.insert("company_name".into(), "Tawi la Arusha".into());
        assert_eq!(
            t.render(&v, &ctx(Language::En)).unwrap(),
            "Juma: KES 20,000.00 (KES) due 24 Nov 2026, INV-7, https://pay.example/7. Tawi la Arusha {ok}"
        );
    }

    #[test]
    fn unknown_variables_and_stray_braces_are_refused_at_save() {
        let errors = Template::parse("Hi {customer_nmae}, pay {amount} by {due}").unwrap_err();
        assert_eq!(
            errors,
            [
                SyntaxError::UnknownVariable("customer_nmae".into()),
                SyntaxError::UnknownVariable("due".into())
            ]
        );
        assert!(
            errors[0].to_string().contains("{customer_name}"),
            "{}",
            errors[0]
        );
        assert_eq!(
            Template::parse("a { b").unwrap_err(),
            [SyntaxError::Unclosed(3)]
        );
        assert_eq!(
            Template::parse("a } b").unwrap_err(),
            [SyntaxError::StrayClose(3)]
        );
        assert_eq!(Template::parse("  ").unwrap_err(), [SyntaxError::Empty]);
        assert!(matches!(
            Template::parse(&"x".repeat(1601)).unwrap_err()[..],
            [SyntaxError::TooLong(1601)]
        ));
        assert_eq!(
            Template::parse("{{customer_name}}").unwrap().fixed_text(),
            "{customer_name}"
        );
    }

    #[test]
    fn missing_and_malformed_values_are_named_never_left_as_holes() {
        let t = Template::parse("{customer_name} {amount} {due_date} {payment_link}").unwrap();
        let errors = t
            .render(
                &vars(&[
                    ("customer_name", "  "),
                    ("amount", "1,500"),
                    ("due_date", "2026-11-24"),
                ]),
                &ctx(Language::En),
            )
            .unwrap_err();
        assert_eq!(
            errors.iter().map(|e| e.variable).collect::<Vec<_>>(),
            [
                Variable::CustomerName,
                Variable::Amount,
                Variable::PaymentLink
            ]
        );
        assert_eq!(errors[0].to_string(), "no value for {customer_name}");
        assert!(matches!(errors[1].problem, Problem::Invalid(_)));
        assert_eq!(errors[2].to_string(), "no value for {payment_link}");
        let bad_currency = t
            .render(
                &vars(&[
                    ("customer_name", "A"),
                    ("amount", "5"),
                    ("currency", "EUR"),
                    ("due_date", "2026-11-24"),
                    ("payment_link", "x"),
                ]),
                &ctx(Language::En),
            )
            .unwrap_err();
        assert_eq!(bad_currency[0].variable, Variable::Amount);
    }

    #[test]
    fn the_company_fills_its_own_values() {
        let t = Template::parse("{company_name}: {payment_link}").unwrap();
        let c = Context {
            payment_link: Some("Paybill 400200"),
            ..ctx(Language::Sw)
        };
        assert_eq!(
            t.render(&Vars::new(), &c).unwrap(),
            "Duka la Mama: Paybill 400200"
        );
    }

    #[test]
    fn json_values_are_strings_or_numbers() {
        let map =
            serde_json::json!({"amount": 20000, "customer_name": "Asha", "invoice_number": null});
        let v = vars_from_json(map.as_object().unwrap()).unwrap();
        assert_eq!(v, vars(&[("amount", "20000"), ("customer_name", "Asha")]));
        let map = serde_json::json!({"amount": [1]});
        assert!(vars_from_json(map.as_object().unwrap()).is_err());
    }
}
