//! The subset of GitHub's `${{ }}` expression language the kit's workflow uses, evaluated as
//! GitHub does: `always()`, `success()`, `failure()`, `cancelled()`, `!`, `&&`, `||`, `==`, `!=`,
//! parentheses, 'string' literals and the contexts `inputs.X`, `env.X`, `github.X`,
//! `steps.ID.outcome`, `steps.ID.conclusion`, `steps.ID.outputs.X`. Anything else is an error, so
//! a workflow change that needs more fails this test instead of being evaluated wrongly.

use std::collections::HashMap;

/// What an expression can see.
#[derive(Debug, Default)]
pub struct Context {
    /// `inputs.*`.
    pub inputs: HashMap<String, String>,
    /// `env.*` (the job's env so far).
    pub env: HashMap<String, String>,
    /// `github.*`.
    pub github: HashMap<String, String>,
    /// Step id → (outcome, outputs).
    pub steps: HashMap<String, (String, HashMap<String, String>)>,
    /// True once a step has failed (what `success()` / `failure()` look at).
    pub job_failed: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
}

impl Value {
    fn truthy(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Str(s) => !s.is_empty(),
        }
    }
    fn text(&self) -> String {
        match self {
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => s.clone(),
        }
    }
}

struct Parser<'a> {
    tokens: Vec<String>,
    at: usize,
    ctx: &'a Context,
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            if i == chars.len() {
                return Err(format!("unterminated string in `{text}`"));
            }
            i += 1;
            out.push(chars[start..i].iter().collect());
        } else if "&|=!".contains(c) && i + 1 < chars.len() && "&|=".contains(chars[i + 1]) {
            out.push(chars[i..i + 2].iter().collect());
            i += 2;
        } else if "()!".contains(c) {
            out.push(c.to_string());
            i += 1;
        } else if c.is_ascii_alphanumeric() || "._-".contains(c) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "._-".contains(chars[i]))
            {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else {
            return Err(format!("unsupported character `{c}` in `{text}`"));
        }
    }
    Ok(out)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }
    fn next(&mut self) -> Result<String, String> {
        let t = self.tokens.get(self.at).cloned().ok_or("unexpected end")?;
        self.at += 1;
        Ok(t)
    }
    fn or(&mut self) -> Result<Value, String> {
        let mut left = self.and()?;
        while self.peek() == Some("||") {
            self.at += 1;
            let right = self.and()?;
            left = if left.truthy() { left } else { right };
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Value, String> {
        let mut left = self.equality()?;
        while self.peek() == Some("&&") {
            self.at += 1;
            let right = self.equality()?;
            left = if left.truthy() { right } else { left };
        }
        Ok(left)
    }
    fn equality(&mut self) -> Result<Value, String> {
        let left = self.unary()?;
        match self.peek() {
            Some("==") | Some("!=") => {
                let op = self.next()?;
                let right = self.unary()?;
                // GitHub compares strings case-insensitively.
                let same = left.text().eq_ignore_ascii_case(&right.text());
                Ok(Value::Bool(if op == "==" { same } else { !same }))
            }
            _ => Ok(left),
        }
    }
    fn unary(&mut self) -> Result<Value, String> {
        if self.peek() == Some("!") {
            self.at += 1;
            return Ok(Value::Bool(!self.unary()?.truthy()));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Value, String> {
        let t = self.next()?;
        if t == "(" {
            let v = self.or()?;
            if self.next()? != ")" {
                return Err("missing `)`".into());
            }
            return Ok(v);
        }
        if let Some(s) = t.strip_prefix('\'') {
            return Ok(Value::Str(s.trim_end_matches('\'').to_owned()));
        }
        if self.peek() == Some("(") {
            self.at += 1;
            if self.next()? != ")" {
                return Err(format!("{t}() takes no arguments here"));
            }
            let failed = self.ctx.job_failed;
            return match t.as_str() {
                "always" => Ok(Value::Bool(true)),
                "success" => Ok(Value::Bool(!failed)),
                "failure" => Ok(Value::Bool(failed)),
                // The harness never cancels a run.
                "cancelled" => Ok(Value::Bool(false)),
                other => Err(format!("unsupported function {other}()")),
            };
        }
        self.context(&t).map(Value::Str)
    }
    fn context(&self, path: &str) -> Result<String, String> {
        let parts: Vec<&str> = path.split('.').collect();
        let get = |m: &HashMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
        match parts.as_slice() {
            ["inputs", k] => Ok(get(&self.ctx.inputs, k)),
            ["env", k] => Ok(get(&self.ctx.env, k)),
            ["github", k] => Ok(get(&self.ctx.github, k)),
            ["steps", id, "outcome" | "conclusion"] => Ok(self
                .ctx
                .steps
                .get(*id)
                .map(|(o, _)| o.clone())
                .unwrap_or_default()),
            ["steps", id, "outputs", k] => Ok(self
                .ctx
                .steps
                .get(*id)
                .map(|(_, out)| get(out, k))
                .unwrap_or_default()),
            _ => Err(format!("unsupported context `{path}`")),
        }
    }
}

/// Evaluates one expression (without the `${{ }}`).
fn eval(expr: &str, ctx: &Context) -> Result<Value, String> {
    let mut p = Parser {
        tokens: tokenize(expr)?,
        at: 0,
        ctx,
    };
    let v = p.or()?;
    if p.at != p.tokens.len() {
        return Err(format!("trailing tokens in `{expr}`"));
    }
    Ok(v)
}

/// An `if:` condition: with or without `${{ }}`, as GitHub accepts both.
pub fn condition(text: &str, ctx: &Context) -> Result<bool, String> {
    let t = text.trim();
    let inner = t
        .strip_prefix("${{")
        .and_then(|r| r.strip_suffix("}}"))
        .unwrap_or(t);
    Ok(eval(inner, ctx)?.truthy())
}

/// Replaces every `${{ expr }}` in `text` by its value.
pub fn substitute(text: &str, ctx: &Context) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| format!("unterminated ${{{{ in `{text}`"))?;
        out.push_str(&eval(&rest[start + 3..start + end], ctx)?.text());
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[test]
fn conditions_evaluate_as_github_does() {
    let mut ctx = Context::default();
    ctx.steps.insert(
        "diff".into(),
        (
            "success".into(),
            HashMap::from([("status".into(), "1".into())]),
        ),
    );
    assert!(
        condition(
            "${{ !cancelled() && steps.diff.outcome == 'success' }}",
            &ctx
        )
        .unwrap()
    );
    assert!(!condition("steps.pr.outcome == 'success'", &ctx).unwrap());
    assert!(condition("always() && steps.diff.outputs.status != ''", &ctx).unwrap());
    ctx.job_failed = true;
    assert!(!condition("success()", &ctx).unwrap());
    assert!(condition("failure() || steps.x.outcome == 'success'", &ctx).unwrap());
    assert!(
        condition("hashFiles('x')", &ctx).is_err(),
        "unknown functions are refused"
    );
    ctx.inputs.insert("runs".into(), "2".into());
    assert_eq!(
        substitute("RUNS=${{ inputs.runs }}!", &ctx).unwrap(),
        "RUNS=2!"
    );
}
