import { parseCsv, parseSnapshot, SnapshotError } from '@idlc/engine';

const csv = (text: string) => [...parseCsv(text)].map((r) => [r.line, ...r.fields]);
const snap = (text: string, name = 'hr.csv') => parseSnapshot(Buffer.from(text, 'utf8'), name);
const fails = (text: string, name = 'hr.csv') => {
  try {
    snap(text, name);
  } catch (e) {
    expect(e).toBeInstanceOf(SnapshotError);
    return (e as Error).message;
  }
  throw new Error('parsed');
};

describe('RFC 4180 CSV reader', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks, and numbers each record by its first line', () => {
    expect(csv('a,b,c\r\n"x, y","say ""hi""","two\r\nlines"\r\nlast,,\r\n')).toEqual([
      [1, 'a', 'b', 'c'],
      [2, 'x, y', 'say "hi"', 'two\r\nlines'],
      [4, 'last', '', ''],
    ]);
  });

  it('accepts LF line ends, a BOM, no final line break and blank lines', () => {
    expect(csv('\uFEFFa,b\n\n1,2\n3,""')).toEqual([
      [1, 'a', 'b'],
      [3, '1', '2'],
      [4, '3', ''],
    ]);
    // A record of one quoted empty field is a value, not a blank line.
    expect(csv('a\n""\n')).toEqual([
      [1, 'a'],
      [2, ''],
    ]);
  });

  it('keeps spaces (they are part of a field) and a lone CR inside quotes', () => {
    expect(csv(' a , b \n"x\ry",z\n')).toEqual([
      [1, ' a ', ' b '],
      [2, 'x\ry', 'z'],
    ]);
  });

  it('refuses what RFC 4180 does not allow, naming the line', () => {
    const err = (t: string) => {
      try {
        csv(t);
      } catch (e) {
        return (e as Error).message;
      }
      return 'parsed';
    };
    expect(err('a,b\n1,"open\n2,3\n')).toBe('line 2: a quoted field is never closed');
    expect(err('a,b\n1,2\nx"y,3\n')).toBe('line 3: a quote inside an unquoted field (quote the whole field and double the quote)');
    expect(err('a,b\n"x"y,3\n')).toBe('line 2: unexpected "y" after a closing quote (a quote inside a field must be doubled)');
    expect(err('a,b\r1,2\r\n')).toBe('line 1: a carriage return that does not end a line');
  });
});

describe('HR snapshot', () => {
  it('maps columns case-insensitively (spaces, _ and - ignored), empty cells to null, and lists ignored columns', () => {
    const s = snap('\uFEFFEmployee_ID,Department,cost center,Employment Status,Hire Date\r\nE1,Sales,,Active,2020-01-01\r\n E2 ,Finance,CC-1,,2021-02-02\r\n');
    expect(s).toMatchObject({ format: 'csv', attributes: ['department', 'costCenter'], hasStatus: true, ignoredColumns: ['Hire Date'] });
    expect(s.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect([...s.records.values()]).toEqual([
      { employeeId: 'E1', where: 'line 2', attributes: { department: 'Sales', costCenter: null }, status: 'active' },
      { employeeId: 'E2', where: 'line 3', attributes: { department: 'Finance', costCenter: 'CC-1' }, status: undefined },
    ]);
  });

  it('reads JSON as an array or { employees: [...] }; a key a record leaves out is not compared for it', () => {
    const a = snap('[{"employeeId": "E1", "title": "Engineer", "status": "leave"}, {"employeeId": 42, "title": null, "badge": 7}]', 'x.json');
    expect(a).toMatchObject({ format: 'json', attributes: ['title'], hasStatus: true, ignoredColumns: ['badge'] });
    expect([...a.records.values()]).toEqual([
      { employeeId: 'E1', where: 'record 1', attributes: { title: 'Engineer' }, status: 'leave' },
      { employeeId: '42', where: 'record 2', attributes: { title: null }, status: undefined },
    ]);
    const b = snap('{"employees": [{"employee_id": "E1", "department": "Sales"}, {"employeeId": "E2"}]}', 'x.json');
    expect([...b.records.values()].map((r) => r.attributes)).toEqual([{ department: 'Sales' }, {}]);
    // Without an extension the first character decides.
    expect(parseSnapshot(Buffer.from('  [{"employeeId":"E1"}]'), '-').format).toBe('json');
    expect(parseSnapshot(Buffer.from('employeeId\nE1\n'), 'export.txt').format).toBe('csv');
  });

  it('refuses a bad snapshot as a whole, naming the line or record', () => {
    expect(fails('')).toBe('the file is empty: a header row with an employeeId column is required');
    expect(fails('email\na@example.com\n')).toBe('line 1: the header row has no employeeId column (found: "email")');
    expect(fails('employeeId,employee_id\nE1,E1\n')).toBe('line 1: columns "employeeId" and "employee_id" both name employeeId');
    expect(fails('employeeId,title\nE1,a\n,b\n')).toBe('line 3: employeeId is empty');
    expect(fails('employeeId\nE1\nnot valid!\n')).toBe('line 3: employeeId "not valid!" is not an employee id (letters, digits, . _ : @ -, at most 128)');
    expect(fails('employeeId,title\nE1,"a\nb"\nE1,c\n')).toBe('line 4: duplicate employeeId "E1" (first at line 2)');
    expect(fails('employeeId,status\nE1,retired\n')).toBe('line 2: status "retired" is not one of active, pending, leave, terminated');
    expect(fails('{"employees": {}}', 'x.json')).toBe('a JSON snapshot is an array of records or an object { "employees": [...] }');
    expect(fails('[{"employeeId": "E1"}, "E2"]', 'x.json')).toBe('record 2: a record is a JSON object');
    expect(fails('[{"title": "x"}]', 'x.json')).toBe('record 1: no employeeId');
    expect(fails('[{"employeeId": "E1", "title": ["x"]}]', 'x.json')).toBe('record 1: title must be a string, a number or null');
    expect(fails('[\n{"employeeId": "E1"},\n{"employeeId": "E1"}\n]', 'x.json')).toBe('record 2: duplicate employeeId "E1" (first at record 1)');
    expect(fails('[\n{"employeeId": "E1"},\n{"employeeId" "E2"}\n]', 'x.json')).toMatch(/^not valid JSON: line 3: /);
  });

  it('refuses bytes that are not UTF-8', () => {
    expect(() => parseSnapshot(Buffer.from([0x65, 0x6d, 0x70, 0xff, 0x0a]), 'x.csv')).toThrow('the file is not UTF-8 text');
  });
});
