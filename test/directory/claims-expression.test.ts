import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ClaimsExpressionError, matchesClaims, parseClaimsExpression } from '../../src/directory/claims-expression.js';

describe("flexible federated credentials' claims expressions (language version 1)", () => {
  const github = { sub: 'repo:org/app:environment:prod', job_workflow_ref: 'org/app/.github/workflows/deploy.yml@refs/heads/main' };

  it('eq is exact and case-sensitive; matches takes * and ? ; and joins terms', () => {
    const match = (expression: string, claims: Record<string, unknown> = github) => matchesClaims(parseClaimsExpression(expression), claims);
    assert.equal(match("claims['sub'] eq 'repo:org/app:environment:prod'"), true);
    assert.equal(match("claims['sub'] eq 'repo:org/app:environment:PROD'"), false);
    assert.equal(match("claims['sub'] matches 'repo:org/app:environment:*'"), true);
    assert.equal(match("claims['sub'] matches 'repo:org/app:environment:pro?'"), true);
    assert.equal(match("claims['sub'] matches 'repo:org/app:environment:pr?'"), false);
    assert.equal(match("claims['sub'] matches 'repo:org/app.*'"), false, 'a regex metacharacter is literal');
    assert.equal(match("claims['sub'] matches 'repo:*' and claims['job_workflow_ref'] matches 'org/app/.github/workflows/deploy.yml@*'"), true);
    assert.equal(match("claims['sub'] matches 'repo:*' and claims['job_workflow_ref'] eq 'x'"), false);
    assert.equal(match("claims['missing'] matches '*'"), false, 'a missing claim matches nothing');
  });

  it("nested claim paths (openmsi's extension, for Kubernetes)", () => {
    const claims = { 'kubernetes.io': { serviceaccount: { uid: 'u-1', name: 'web' } } };
    assert.equal(matchesClaims(parseClaimsExpression("claims['kubernetes.io']['serviceaccount']['uid'] eq 'u-1'"), claims), true);
    assert.equal(matchesClaims(parseClaimsExpression("claims['kubernetes.io']['serviceaccount'] eq 'u-1'"), claims), false);
  });

  it('refuses anything outside the grammar', () => {
    for (const bad of [
      '',
      "claims['sub'] like 'x'",
      "claims['sub'] eq x",
      "claims['sub']  eq 'x'",
      "claims['sub'] eq 'x' or claims['a'] eq 'b'",
      "claims[''] eq 'x'",
      "claim['sub'] eq 'x'",
      'x'.repeat(601),
    ]) {
      assert.throws(() => parseClaimsExpression(bad), ClaimsExpressionError, bad.slice(0, 40));
    }
  });
});
