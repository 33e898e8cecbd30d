/**
 * The rubric's formula language: a small, closed expression language over numbers, written by tenants and run on
 * every result, so it is parsed by our own tokenizer and recursive-descent parser into an AST and evaluated by
 * walking it: no eval, no Function, no property access, no loops; bounded in length, tokens and depth.
 *
 *   expr    := 'if' expr 'then' expr 'else' expr | or
 *   or      := and ('or' and)*           and := not ('and' not)*         not := 'not' not | cmp
 *   cmp     := add (('<' | '<=' | '>' | '>=' | '==' | '!=') add)?
 *   add     := mul (('+' | '-') mul)*    mul := unary (('*' | '/') unary)*     unary := '-' unary | primary
 *   primary := number | ref | fn '(' expr (',' expr)* ')' | '(' expr ')'
 *   ref     := 'q.' questionId | 'c.' categoryKey | 'f.' formulaKey
 *   fn      := min | max | round | clamp | abs
 *
 * Comparisons and and/or/not give 1 or 0; any non-zero number is true. `q.x` is the question's points (choices,
 * yes/no, a scale with points) or its value (number, scale); an unanswered or hidden question is 0.
 */

export const MAX_SOURCE_LENGTH = 2000
export const MAX_TOKENS = 500
export const MAX_DEPTH = 40

export type RefScope = 'q' | 'c' | 'f'
export type BinaryOp = '+' | '-' | '*' | '/' | '<' | '<=' | '>' | '>=' | '==' | '!=' | 'and' | 'or'
export type FunctionName = 'min' | 'max' | 'round' | 'clamp' | 'abs'
export const FUNCTIONS: Record<FunctionName, { min: number; max: number }> = {
  min: { min: 1, max: 20 },
  max: { min: 1, max: 20 },
  round: { min: 1, max: 2 },
  clamp: { min: 3, max: 3 },
  abs: { min: 1, max: 1 },
}

export type Expr =
  | { k: 'num'; v: number; at: number }
  | { k: 'ref'; scope: RefScope; id: string; at: number }
  | { k: 'neg'; a: Expr; at: number }
  | { k: 'not'; a: Expr; at: number }
  | { k: 'bin'; op: BinaryOp; a: Expr; b: Expr; at: number }
  | { k: 'call'; fn: FunctionName; args: Expr[]; at: number }
  | { k: 'if'; c: Expr; t: Expr; e: Expr; at: number }

/** A formula that cannot be parsed or evaluated; `at` is the character offset in the source. */
export class ExpressionError extends Error {
  constructor(message: string, readonly at: number | null = null) {
    super(at === null ? message : `${message} (at character ${at + 1})`)
    this.name = 'ExpressionError'
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Tokenizer

type Token =
  | { t: 'num'; v: number; at: number }
  | { t: 'ref'; scope: RefScope; id: string; at: number }
  | { t: 'word'; v: string; at: number }
  | { t: 'op'; v: string; at: number }
  | { t: 'end'; at: number }

const KEYWORDS = new Set(['if', 'then', 'else', 'and', 'or', 'not'])
const IDENT = /[a-z_][a-z0-9_]*/y
const NUMBER = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y
const OPERATORS = ['<=', '>=', '==', '!=', '&&', '||', '<', '>', '+', '-', '*', '/', '(', ')', ',', '!']

export function tokenize(source: string): Token[] {
  if (source.length > MAX_SOURCE_LENGTH) throw new ExpressionError(`a formula is at most ${MAX_SOURCE_LENGTH} characters`)
  const tokens: Token[] = []
  let i = 0
  while (i < source.length) {
    const ch = source[i]!
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      i++
      continue
    }
    if (tokens.length >= MAX_TOKENS) throw new ExpressionError(`a formula is at most ${MAX_TOKENS} tokens`, i)
    if ((ch >= '0' && ch <= '9') || (ch === '.' && /\d/.test(source[i + 1] ?? ''))) {
      NUMBER.lastIndex = i
      const m = NUMBER.exec(source)!
      const v = Number(m[0])
      if (!Number.isFinite(v)) throw new ExpressionError(`number ${m[0]} is out of range`, i)
      tokens.push({ t: 'num', v, at: i })
      i += m[0].length
      continue
    }
    IDENT.lastIndex = i
    const word = IDENT.exec(source)
    if (word && word.index === i) {
      const w = word[0]
      const at = i
      i += w.length
      if ((w === 'q' || w === 'c' || w === 'f') && source[i] === '.') {
        IDENT.lastIndex = i + 1
        const id = IDENT.exec(source)
        if (!id || id.index !== i + 1) throw new ExpressionError(`${w}. must be followed by a ${w === 'q' ? 'question id' : w === 'c' ? 'category key' : 'formula key'}`, i)
        tokens.push({ t: 'ref', scope: w, id: id[0], at })
        i += 1 + id[0].length
        continue
      }
      tokens.push({ t: 'word', v: w, at })
      continue
    }
    const op = OPERATORS.find((o) => source.startsWith(o, i))
    if (op) {
      // && || ! are accepted as spellings of and, or, not.
      tokens.push({ t: 'op', v: op === '&&' ? 'and' : op === '||' ? 'or' : op === '!' ? 'not' : op, at: i })
      i += op.length
      continue
    }
    throw new ExpressionError(`unexpected character ${JSON.stringify(ch)}`, i)
  }
  tokens.push({ t: 'end', at: source.length })
  return tokens
}

// ---------------------------------------------------------------------------------------------------------------
// Parser

export function parseExpression(source: string): Expr {
  const tokens = tokenize(source)
  let pos = 0
  let depth = 0
  const peek = () => tokens[pos]!
  const next = () => tokens[pos++]!
  const isOp = (v: string) => {
    const tk = peek()
    return (tk.t === 'op' && tk.v === v) || (tk.t === 'word' && tk.v === v && KEYWORDS.has(v))
  }
  const expect = (v: string) => {
    if (!isOp(v)) throw new ExpressionError(`expected "${v}"${describe(peek())}`, peek().at)
    return next()
  }
  const describe = (tk: Token) => (tk.t === 'end' ? ' but the formula ended' : ` but found ${tk.t === 'num' ? tk.v : tk.t === 'ref' ? `${tk.scope}.${tk.id}` : `"${tk.v}"`}`)
  const nest = <T>(at: number, fn: () => T): T => {
    if (++depth > MAX_DEPTH) throw new ExpressionError(`a formula nests at most ${MAX_DEPTH} levels`, at)
    try {
      return fn()
    } finally {
      depth--
    }
  }

  const expr = (): Expr => nest(peek().at, () => {
    if (isOp('if')) {
      const at = next().at
      const c = expr()
      expect('then')
      const t = expr()
      expect('else')
      const e = expr()
      return { k: 'if', c, t, e, at }
    }
    return or()
  })
  const leftAssoc = (ops: string[], operand: () => Expr) => (): Expr => {
    let left = operand()
    for (;;) {
      const op = ops.find(isOp)
      if (!op) return left
      const at = next().at
      left = { k: 'bin', op: op as BinaryOp, a: left, b: operand(), at }
    }
  }
  const not = (): Expr => {
    if (isOp('not')) {
      const at = next().at
      return nest(at, () => ({ k: 'not', a: not(), at }))
    }
    return cmp()
  }
  const mul = leftAssoc(['*', '/'], () => unary())
  const add = leftAssoc(['+', '-'], mul)
  const cmp = (): Expr => {
    const left = add()
    const op = ['<=', '>=', '==', '!=', '<', '>'].find(isOp)
    if (!op) return left
    const at = next().at
    const right = add()
    if (['<=', '>=', '==', '!=', '<', '>'].some(isOp)) throw new ExpressionError('comparisons do not chain: use "and"', peek().at)
    return { k: 'bin', op: op as BinaryOp, a: left, b: right, at }
  }
  const and = leftAssoc(['and'], not)
  const or = leftAssoc(['or'], and)
  const unary = (): Expr => {
    if (isOp('-')) {
      const at = next().at
      return nest(at, () => ({ k: 'neg', a: unary(), at }))
    }
    return primary()
  }
  const primary = (): Expr => {
    const tk = next()
    switch (tk.t) {
      case 'num':
        return { k: 'num', v: tk.v, at: tk.at }
      case 'ref':
        return { k: 'ref', scope: tk.scope, id: tk.id, at: tk.at }
      case 'op':
        if (tk.v === '(') {
          const inner = expr()
          expect(')')
          return inner
        }
        break
      case 'word': {
        if (!Object.hasOwn(FUNCTIONS, tk.v)) {
          if (KEYWORDS.has(tk.v)) break
          throw new ExpressionError(`unknown name "${tk.v}": use q.<question>, c.<category>, f.<formula> or one of ${Object.keys(FUNCTIONS).join(', ')}`, tk.at)
        }
        const fn = tk.v as FunctionName
        expect('(')
        const args: Expr[] = [expr()]
        while (isOp(',')) {
          next()
          args.push(expr())
        }
        expect(')')
        const arity = FUNCTIONS[fn]
        if (args.length < arity.min || args.length > arity.max) {
          throw new ExpressionError(`${fn} takes ${arity.min === arity.max ? arity.min : `${arity.min} to ${arity.max}`} arguments, not ${args.length}`, tk.at)
        }
        if (fn === 'round' && args[1] && !(args[1].k === 'num' && Number.isInteger(args[1].v) && args[1].v >= 0 && args[1].v <= 6)) {
          throw new ExpressionError('round(x, digits): digits must be a whole number from 0 to 6', args[1].at)
        }
        return { k: 'call', fn, args, at: tk.at }
      }
      case 'end':
        throw new ExpressionError('the formula ended too early', tk.at)
    }
    throw new ExpressionError(`unexpected ${tk.t === 'op' || tk.t === 'word' ? `"${tk.v}"` : 'token'}`, tk.at)
  }

  const tree = expr()
  if (peek().t !== 'end') throw new ExpressionError(`unexpected${describe(peek())}`, peek().at)
  return tree
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation

/** Values of the references; an unknown one is a bug of the caller (publishing checks every reference). */
export type Resolve = (scope: RefScope, id: string) => number

export class DivisionByZero extends ExpressionError {
  constructor(at: number) {
    super('division by zero', at)
    this.name = 'DivisionByZero'
  }
}

const truth = (v: number) => (v !== 0 ? 1 : 0)

/** Rounds half away from zero, to `digits` decimals, without binary artefacts (1.005 → 1.01). */
export function roundTo(value: number, digits = 0): number {
  const factor = 10 ** digits
  const scaled = Math.abs(value) * factor
  const r = Math.round(Number(scaled.toPrecision(15)))
  return (Math.sign(value) * r) / factor || 0
}

export function evaluate(node: Expr, resolve: Resolve): number {
  const v = evalNode(node, resolve)
  if (!Number.isFinite(v)) throw new ExpressionError('the result is not a finite number', node.at)
  return v
}

function evalNode(n: Expr, resolve: Resolve): number {
  switch (n.k) {
    case 'num':
      return n.v
    case 'ref':
      return resolve(n.scope, n.id)
    case 'neg':
      return -evalNode(n.a, resolve)
    case 'not':
      return truth(evalNode(n.a, resolve)) ? 0 : 1
    case 'if':
      return truth(evalNode(n.c, resolve)) ? evalNode(n.t, resolve) : evalNode(n.e, resolve)
    case 'bin':
      return evalBinary(n, resolve)
    case 'call': {
      const args = n.args.map((a) => evalNode(a, resolve))
      switch (n.fn) {
        case 'min': return Math.min(...args)
        case 'max': return Math.max(...args)
        case 'abs': return Math.abs(args[0]!)
        case 'round': return roundTo(args[0]!, args[1] ?? 0)
        case 'clamp': {
          const [x, lo, hi] = args as [number, number, number]
          return Math.min(Math.max(x, Math.min(lo, hi)), Math.max(lo, hi))
        }
      }
    }
  }
  throw new ExpressionError('unknown node')
}

function evalBinary(n: Extract<Expr, { k: 'bin' }>, resolve: Resolve): number {
  if (n.op === 'and') return truth(evalNode(n.a, resolve)) ? truth(evalNode(n.b, resolve)) : 0
  if (n.op === 'or') return truth(evalNode(n.a, resolve)) ? 1 : truth(evalNode(n.b, resolve))
  const a = evalNode(n.a, resolve)
  const b = evalNode(n.b, resolve)
  switch (n.op) {
    case '+': return a + b
    case '-': return a - b
    case '*': return a * b
    case '/':
      if (b === 0) throw new DivisionByZero(n.at)
      return a / b
    case '<': return a < b ? 1 : 0
    case '<=': return a <= b ? 1 : 0
    case '>': return a > b ? 1 : 0
    case '>=': return a >= b ? 1 : 0
    case '==': return a === b ? 1 : 0
    case '!=': return a !== b ? 1 : 0
  }
}

/** Every reference in the tree, in order of appearance. */
export function references(node: Expr): { scope: RefScope; id: string; at: number }[] {
  const out: { scope: RefScope; id: string; at: number }[] = []
  const walk = (n: Expr): void => {
    switch (n.k) {
      case 'ref': out.push({ scope: n.scope, id: n.id, at: n.at }); return
      case 'neg': case 'not': walk(n.a); return
      case 'bin': walk(n.a); walk(n.b); return
      case 'if': walk(n.c); walk(n.t); walk(n.e); return
      case 'call': n.args.forEach(walk); return
      case 'num': return
    }
  }
  walk(node)
  return out
}

/** The tree with every c./f. reference replaced by the tree it stands for, so only question references remain. */
export function inline(node: Expr, expand: (scope: 'c' | 'f', id: string) => Expr): Expr {
  const walk = (n: Expr): Expr => {
    switch (n.k) {
      case 'ref': return n.scope === 'q' ? n : expand(n.scope, n.id)
      case 'neg': case 'not': return { ...n, a: walk(n.a) }
      case 'bin': return { ...n, a: walk(n.a), b: walk(n.b) }
      case 'if': return { ...n, c: walk(n.c), t: walk(n.t), e: walk(n.e) }
      case 'call': return { ...n, args: n.args.map(walk) }
      case 'num': return n
    }
  }
  return walk(node)
}
