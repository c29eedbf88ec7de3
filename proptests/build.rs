//! Draws random explicit Runge–Kutta tableaux of exact order 1 or 2 (with and without an
//! embedded pair), writes them as tableau files into `OUT_DIR` and generates a model for each.

use std::fmt::Write as _;
use std::path::PathBuf;

/// An exact fraction (small numbers: i128 is plenty).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Q(i128, i128);

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

impl Q {
    fn new(n: i128, d: i128) -> Q {
        let g = gcd(n, d).max(1) * d.signum();
        Q(n / g, d / g)
    }
    fn zero() -> Q {
        Q(0, 1)
    }
    fn add(self, o: Q) -> Q {
        Q::new(self.0 * o.1 + o.0 * self.1, self.1 * o.1)
    }
    fn sub(self, o: Q) -> Q {
        self.add(Q(-o.0, o.1))
    }
    fn mul(self, o: Q) -> Q {
        Q::new(self.0 * o.0, self.1 * o.1)
    }
    fn div(self, o: Q) -> Option<Q> {
        (o.0 != 0).then(|| Q::new(self.0 * o.1, self.1 * o.0))
    }
    fn text(self) -> String {
        if self.1 == 1 {
            format!("\"{}\"", self.0)
        } else {
            format!("\"{}/{}\"", self.0, self.1)
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A small fraction in [-2, 2], zero one time in five.
    fn coef(&mut self) -> Q {
        if self.below(5) == 0 {
            return Q::zero();
        }
        Q::new(self.below(9) as i128 - 4, 1 + self.below(3) as i128).mul(Q(1, 1))
    }
}

fn sum(v: impl Iterator<Item = Q>) -> Q {
    v.fold(Q::zero(), Q::add)
}

/// Order conditions up to 3 (enough to know an order-1 or order-2 method's exact order).
fn exact_order(a: &[Vec<Q>], b: &[Q], c: &[Q]) -> u32 {
    let one = sum(b.iter().copied());
    let bc = sum(b.iter().zip(c).map(|(&b, &c)| b.mul(c)));
    let bcc = sum(b.iter().zip(c).map(|(&b, &c)| b.mul(c).mul(c)));
    let bac = sum(b
        .iter()
        .zip(a)
        .map(|(&b, row)| b.mul(sum(row.iter().zip(c).map(|(&a, &c)| a.mul(c))))));
    if one != Q(1, 1) {
        0
    } else if bc != Q(1, 2) {
        1
    } else if bcc != Q(1, 3) || bac != Q(1, 6) {
        2
    } else {
        3
    }
}

struct Drawn {
    s: usize,
    a: Vec<Vec<Q>>,
    c: Vec<Q>,
    b: Vec<Q>,
    b_hat: Option<Vec<Q>>,
    order: u32,
}

/// Weights `b` with Σ b = 1 and, for order 2, Σ b c = 1/2 (the last two solved for).
fn weights(rng: &mut Rng, c: &[Q], order2: bool) -> Option<Vec<Q>> {
    let s = c.len();
    let mut b: Vec<Q> = (0..s).map(|_| rng.coef()).collect();
    if order2 {
        if s < 2 || c[s - 2] == c[s - 1] {
            return None;
        }
        let rest = &b[..s - 2];
        let r1 = Q(1, 1).sub(sum(rest.iter().copied()));
        let r2 = Q(1, 2).sub(sum(rest.iter().zip(c).map(|(&b, &c)| b.mul(c))));
        // b_{s-2} + b_{s-1} = r1, b_{s-2} c_{s-2} + b_{s-1} c_{s-1} = r2.
        let last = r2.sub(r1.mul(c[s - 2])).div(c[s - 1].sub(c[s - 2]))?;
        b[s - 1] = last;
        b[s - 2] = r1.sub(last);
    } else {
        let rest = sum(b[..s - 1].iter().copied());
        b[s - 1] = Q(1, 1).sub(rest);
    }
    Some(b)
}

fn draw(rng: &mut Rng) -> Drawn {
    loop {
        let s = 1 + rng.below(6) as usize;
        let a: Vec<Vec<Q>> = (0..s)
            .map(|i| (0..i).map(|_| rng.coef()).collect())
            .collect();
        let c: Vec<Q> = a.iter().map(|row| sum(row.iter().copied())).collect();
        let want2 = s >= 2 && rng.below(2) == 0;
        let Some(b) = weights(rng, &c, want2) else {
            continue;
        };
        let order = exact_order(&a, &b, &c);
        if order == 0 || order == 3 {
            continue;
        }
        // Order-2 methods get an embedded order-1 pair half of the time.
        let b_hat = if order == 2 && rng.below(2) == 0 {
            match weights(rng, &c, false) {
                Some(bh) if bh != b && exact_order(&a, &bh, &c) == 1 => Some(bh),
                _ => continue,
            }
        } else {
            None
        };
        // The last row equal to b with c = 1 would be FSAL: fine, but keep the draw simple.
        return Drawn {
            s,
            a,
            c,
            b,
            b_hat,
            order,
        };
    }
}

fn list(v: &[Q]) -> String {
    let items: Vec<String> = v.iter().map(|q| q.text()).collect();
    format!("[{}]", items.join(", "))
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=NEURAL_ODE_TABLEAU_SEED");
    let seed: u64 = std::env::var("NEURAL_ODE_TABLEAU_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261202);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let count = 16;
    let mut models = String::new();
    let mut names = Vec::new();
    for k in 0..count {
        let d = draw(&mut rng);
        let name = format!("random{k}");
        let mut toml = String::new();
        let _ = writeln!(
            toml,
            "# Drawn by proptests/build.rs, seed {seed}: {} stages, order {}.",
            d.s, d.order
        );
        let _ = writeln!(toml, "name = \"{name}\"");
        let _ = writeln!(toml, "title = \"Random tableau {k}\"");
        let _ = writeln!(toml, "reference = \"proptests/build.rs, seed {seed}\"");
        let _ = writeln!(toml, "order = {}", d.order);
        if d.b_hat.is_some() {
            let _ = writeln!(toml, "embedded_order = 1");
        }
        let _ = writeln!(toml, "c = {}", list(&d.c));
        let rows: Vec<String> = d.a.iter().map(|r| list(r)).collect();
        let _ = writeln!(toml, "a = [{}]", rows.join(", "));
        let _ = writeln!(toml, "b = {}", list(&d.b));
        if let Some(bh) = &d.b_hat {
            let _ = writeln!(toml, "b_hat = {}", list(bh));
        }
        let path = out.join(format!("{name}.toml"));
        std::fs::write(&path, toml).expect("write tableau");
        let model = format!("Random{k}");
        let _ = writeln!(
            models,
            r#"
#[neural_ode(tableau = {path:?})]
#[derive(Clone, Debug)]
pub struct {model} {{
    pub l1: Linear<2, 5, f64, Cpu>,
    pub l2: Linear<5, 2, f64, Cpu>,
}}

impl VectorField<State, f64, Cpu> for {model} {{
    fn eval<T: Tape<f64, Cpu>>(&self, t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {{
        self.l2.forward(self.l1.forward(x).tanh()) * (1.0 + 0.3 * t)
    }}
}}

impl Random for {model} {{
    fn build(dev: &Cpu) -> Self {{
        {model} {{ l1: dev.build_module::<builders::Linear<2, 5>, f64>(), l2: dev.build_module::<builders::Linear<5, 2>, f64>() }}
    }}
    fn params(&self, g: &Gradients<f64, Cpu>) -> Vec<f64> {{
        let mut v = g.get(&self.l1.weight).as_vec();
        v.extend(g.get(&self.l1.bias).as_vec());
        v.extend(g.get(&self.l2.weight).as_vec());
        v.extend(g.get(&self.l2.bias).as_vec());
        v
    }}
}}
"#,
            path = path.display().to_string(),
        );
        names.push(model);
    }
    let _ = writeln!(
        models,
        "/// Runs `check` on every random model.\npub fn for_each(check: &mut impl Check) {{"
    );
    for m in &names {
        let _ = writeln!(models, "    check.run::<{m}>();");
    }
    let _ = writeln!(
        models,
        "}}\n\n/// The number of random models.\npub const COUNT: usize = {count};"
    );
    std::fs::write(out.join("models.rs"), models).expect("write models");
}
