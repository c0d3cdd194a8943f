/**
 * The embedded API server's patch algorithms against the worked examples of their RFCs: RFC 7386 (JSON merge
 * patch) Appendix A and RFC 6902 (JSON patch) Appendix A, plus the strategic-merge-patch directives of
 * apimachinery `strategicpatch` that the server honours. Pure functions, no server needed.
 */
import { describe, expect, it } from 'vitest';
import { jsonPatch, mergePatch, strategicMergePatch, type Json } from '../../../dev/apiserver/patch.js';

describe('JSON merge patch (RFC 7386 Appendix A)', () => {
  const cases: Array<[Json, Json, Json]> = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  it.each(cases)('%j + %j = %j', (original, patch, result) => {
    expect(mergePatch(original, patch)).toEqual(result);
  });
});

describe('JSON patch (RFC 6902 Appendix A)', () => {
  it('A.1-A.7, A.10, A.11, A.14, A.16: add, remove, replace, move, escapes', () => {
    expect(jsonPatch({ foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux' }])).toEqual({ baz: 'qux', foo: 'bar' });
    expect(jsonPatch({ foo: ['bar', 'baz'] }, [{ op: 'add', path: '/foo/1', value: 'qux' }])).toEqual({ foo: ['bar', 'qux', 'baz'] });
    expect(jsonPatch({ baz: 'qux', foo: 'bar' }, [{ op: 'remove', path: '/baz' }])).toEqual({ foo: 'bar' });
    expect(jsonPatch({ foo: ['bar', 'qux', 'baz'] }, [{ op: 'remove', path: '/foo/1' }])).toEqual({ foo: ['bar', 'baz'] });
    expect(jsonPatch({ baz: 'qux', foo: 'bar' }, [{ op: 'replace', path: '/baz', value: 'boo' }])).toEqual({ baz: 'boo', foo: 'bar' });
    expect(
      jsonPatch({ foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } }, [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }]),
    ).toEqual({ foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } });
    expect(jsonPatch({ foo: ['all', 'grass', 'cows', 'eat'] }, [{ op: 'move', from: '/foo/1', path: '/foo/3' }])).toEqual({ foo: ['all', 'cows', 'eat', 'grass'] });
    expect(jsonPatch({ foo: 'bar' }, [{ op: 'add', path: '/child', value: { grandchild: {} } }])).toEqual({ foo: 'bar', child: { grandchild: {} } });
    expect(jsonPatch({ foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux', xyz: 123 }])).toEqual({ foo: 'bar', baz: 'qux' });
    expect(jsonPatch({ '/': 9, '~1': 10 }, [{ op: 'test', path: '/~01', value: 10 }])).toEqual({ '/': 9, '~1': 10 });
    expect(jsonPatch({ foo: ['bar'] }, [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }])).toEqual({ foo: ['bar', ['abc', 'def']] });
  });

  it('A.8, A.9, A.12, A.13: tests, missing targets and a bad op fail without changing the input', () => {
    const doc: Json = { baz: 'qux', foo: ['a', 2, 'c'] };
    expect(jsonPatch(doc, [{ op: 'test', path: '/baz', value: 'qux' }, { op: 'test', path: '/foo/1', value: 2 }])).toEqual(doc);
    expect(() => jsonPatch({ baz: 'qux' }, [{ op: 'test', path: '/baz', value: 'bar' }])).toThrow(/test failed/);
    expect(() => jsonPatch({ foo: 'bar' }, [{ op: 'add', path: '/baz/bat', value: 'qux' }])).toThrow();
    expect(() => jsonPatch({ foo: 'bar' }, [{ op: 'frobnicate', path: '/foo' }])).toThrow(/unknown json patch op/);
    expect(() => jsonPatch({}, { op: 'add' })).toThrow(/array/);
    expect(doc).toEqual({ baz: 'qux', foo: ['a', 2, 'c'] });
  });
});

describe('strategic merge patch (approximation)', () => {
  const pod: Json = { spec: { containers: [{ name: 'a', image: '1' }, { name: 'b', image: '2' }] }, metadata: { labels: { x: '1' } } };
  it('merges lists of named objects by name and honours $patch: delete in them', () => {
    expect(strategicMergePatch(pod, { spec: { containers: [{ name: 'b', image: '3' }, { name: 'c', image: '4' }] } })).toEqual({
      spec: { containers: [{ name: 'a', image: '1' }, { name: 'b', image: '3' }, { name: 'c', image: '4' }] },
      metadata: { labels: { x: '1' } },
    });
    expect(strategicMergePatch(pod, { spec: { containers: [{ name: 'a', $patch: 'delete' }] } })).toEqual({
      spec: { containers: [{ name: 'b', image: '2' }] },
      metadata: { labels: { x: '1' } },
    });
  });

  it('replaces maps on $patch: replace, drops $setElementOrder and applies $deleteFromPrimitiveList', () => {
    expect(strategicMergePatch(pod, { metadata: { labels: { $patch: 'replace', y: '2' } } })).toMatchObject({ metadata: { labels: { y: '2' } } });
    expect(strategicMergePatch({ f: [1, 2, 3] }, { '$deleteFromPrimitiveList/f': [2], '$setElementOrder/f': [1, 3] })).toEqual({ f: [1, 3] });
    expect(strategicMergePatch({ a: 1, b: 2 }, { b: null })).toEqual({ a: 1 });
  });
});
