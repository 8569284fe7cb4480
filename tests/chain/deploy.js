#!/usr/bin/env node
// Compile TestToken.sol (solc-js, standard JSON, optimizer on) and deploy it over JSON-RPC to a
// node that has unlocked accounts (anvil), then mint to one address.
//
//   node deploy.js <rpc_url> <name> <symbol> <decimals> <mint_to> <mint_amount_base_units>
//
// Prints exactly one line: {"address":"0x…","deploy_tx":"0x…","block":N}  (address lowercase).
// Deploys and mints from the first account of eth_accounts. Exits 1 with a message on stderr on
// any failure, 2 on bad usage.
//
// Environment:
//   TESTTOKEN_ARTIFACT  optional JSON file caching the compiled ABI/bytecode (keyed by source +
//                       solc version); anvil_fixture.sh points it into its state dir so that the
//                       three deploys of one start compile only once (~1 s each otherwise).
//   DEPLOY_TIMEOUT_MS   per-receipt wait (default 30000).
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const SOURCE_FILE = path.join(__dirname, 'TestToken.sol');
const RECEIPT_TIMEOUT_MS = Number(process.env.DEPLOY_TIMEOUT_MS || 30000);

function fail(msg) {
  process.stderr.write(`deploy.js: ${msg}\n`);
  process.exit(1);
}

function usage(msg) {
  process.stderr.write(`deploy.js: ${msg}\n` +
    'usage: node deploy.js <rpc_url> <name> <symbol> <decimals> <mint_to> <mint_amount_base_units>\n');
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// compile

function compile() {
  const source = fs.readFileSync(SOURCE_FILE, 'utf8');
  const solcPkg = require('solc/package.json');
  const key = crypto.createHash('sha256').update(`solc ${solcPkg.version}\n`).update(source).digest('hex');
  const cache = process.env.TESTTOKEN_ARTIFACT;
  if (cache) {
    try {
      const a = JSON.parse(fs.readFileSync(cache, 'utf8'));
      if (a.key === key && a.bytecode && a.methodIdentifiers) return a;
    } catch (_) { /* missing or stale: compile */ }
  }
  const solc = require('solc'); // slow-ish to load (wasm), so only on a cache miss
  const input = {
    language: 'Solidity',
    sources: { 'TestToken.sol': { content: source } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.methodIdentifiers'] } },
    },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors || []).filter((e) => e.severity === 'error');
  if (errors.length) fail(`solc failed:\n${errors.map((e) => e.formattedMessage || e.message).join('\n')}`);
  const c = out.contracts && out.contracts['TestToken.sol'] && out.contracts['TestToken.sol'].TestToken;
  if (!c || !c.evm.bytecode.object) fail('solc produced no bytecode for TestToken');
  const artifact = {
    key,
    solc: solc.version(),
    abi: c.abi,
    bytecode: '0x' + c.evm.bytecode.object,
    methodIdentifiers: c.evm.methodIdentifiers,
  };
  if (cache) { // atomic: concurrent deploys may race on the same cache file
    const tmp = `${cache}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(artifact));
    fs.renameSync(tmp, cache);
  }
  return artifact;
}

// ---------------------------------------------------------------------------------------------
// ABI encoding (only what the constructor and mint need)

const word = (hex) => hex.padStart(64, '0');
const uintWord = (v) => word(BigInt(v).toString(16));
const addressWord = (a) => word(a.slice(2).toLowerCase());

function stringTail(s) {
  const bytes = Buffer.from(s, 'utf8');
  const padded = Buffer.alloc(Math.ceil(bytes.length / 32) * 32);
  bytes.copy(padded);
  return uintWord(bytes.length) + padded.toString('hex');
}

// constructor(string name_, string symbol_, uint8 decimals_)
function encodeCtor(name, symbol, decimals) {
  const nameTail = stringTail(name);
  const headLen = 3 * 32;
  return uintWord(headLen) + uintWord(headLen + nameTail.length / 2) + uintWord(decimals) +
    nameTail + stringTail(symbol);
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC

let rpcId = 0;
async function rpc(url, method, params = []) {
  let res;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method, params }),
      signal: AbortSignal.timeout(15000),
    });
  } catch (e) {
    fail(`${method} to ${url}: ${e.cause ? e.cause.message || e.cause.code : e.message}`);
  }
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch (_) { fail(`${method}: HTTP ${res.status}, not JSON: ${text.slice(0, 300)}`); }
  if (body.error) fail(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitReceipt(url, hash, what) {
  const deadline = Date.now() + RECEIPT_TIMEOUT_MS;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    const r = await rpc(url, 'eth_getTransactionReceipt', [hash]);
    if (r) {
      if (r.status !== '0x1') fail(`${what} tx ${hash} reverted (status ${r.status})`);
      return r;
    }
    if (Date.now() > deadline) fail(`${what} tx ${hash}: no receipt after ${RECEIPT_TIMEOUT_MS} ms`);
    await sleep(delay);
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 6) usage(`expected 6 arguments, got ${args.length}`);
  const [url, name, symbol, decimalsArg, mintTo, amountArg] = args;
  if (!/^https?:\/\//.test(url)) usage(`rpc_url must be http(s)://…, got "${url}"`);
  if (!/^\d+$/.test(decimalsArg) || Number(decimalsArg) > 255) usage(`decimals must be 0..255, got "${decimalsArg}"`);
  if (!/^0x[0-9a-fA-F]{40}$/.test(mintTo)) usage(`mint_to must be a 0x address, got "${mintTo}"`);
  if (!/^\d+$/.test(amountArg) || BigInt(amountArg) >= 2n ** 256n) usage(`mint_amount must be a decimal uint256, got "${amountArg}"`);

  const art = compile();
  const accounts = await rpc(url, 'eth_accounts');
  if (!Array.isArray(accounts) || accounts.length === 0) fail(`eth_accounts on ${url} returned no unlocked account`);
  const from = accounts[0].toLowerCase();

  const deployTx = await rpc(url, 'eth_sendTransaction', [{
    from, data: art.bytecode + encodeCtor(name, symbol, Number(decimalsArg)),
  }]);
  const dr = await waitReceipt(url, deployTx, 'deploy');
  if (!dr.contractAddress) fail(`deploy tx ${deployTx}: receipt has no contractAddress`);
  const address = dr.contractAddress.toLowerCase();
  const code = await rpc(url, 'eth_getCode', [address, 'latest']);
  if (!code || code === '0x') fail(`no code at ${address} after deploy`);

  const mintSel = art.methodIdentifiers['mint(address,uint256)'];
  if (!mintSel) fail('mint(address,uint256) not in the compiled ABI');
  const mintTx = await rpc(url, 'eth_sendTransaction', [{
    from, to: address, data: '0x' + mintSel + addressWord(mintTo) + uintWord(amountArg),
  }]);
  await waitReceipt(url, mintTx, 'mint');

  process.stdout.write(JSON.stringify({ address, deploy_tx: deployTx, block: Number(BigInt(dr.blockNumber)) }) + '\n');
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
