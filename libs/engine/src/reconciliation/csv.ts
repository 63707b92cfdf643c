/**
 * An RFC 4180 CSV reader for HR snapshots. Hand-written because no CSV library is installed; a
 * well-kept one (csv-parse) would be preferable. Beyond the RFC it accepts LF-only line ends and a
 * leading UTF-8 byte order mark, because HR exports produce both; everything else that the RFC
 * does not allow is an error naming the line, never a silent guess.
 */
export class CsvSyntaxError extends Error {
  constructor(
    readonly line: number,
    detail: string,
  ) {
    super(`line ${line}: ${detail}`);
    this.name = 'CsvSyntaxError';
  }
}

export interface CsvRecord {
  /** 1-based physical line on which the record starts (a quoted field may span lines). */
  line: number;
  fields: string[];
}

/**
 * Splits text into records of fields. Quoted fields may hold commas, quotes (doubled) and line
 * breaks. A blank line is skipped.
 */
export function* parseCsv(text: string): Generator<CsvRecord> {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const n = text.length;
  let line = 1;
  while (i < n) {
    const start = line;
    const blank = text[i] === '\n' || text[i] === '\r';
    const fields: string[] = [];
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        const opened = line;
        i++;
        for (;;) {
          if (i >= n) throw new CsvSyntaxError(opened, 'a quoted field is never closed');
          const ch = text[i];
          if (ch === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (ch === '\n') line++;
          field += ch;
          i++;
        }
        if (i < n && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
          throw new CsvSyntaxError(line, `unexpected ${JSON.stringify(text[i])} after a closing quote (a quote inside a field must be doubled)`);
        }
      } else {
        const from = i;
        while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          if (text[i] === '"') throw new CsvSyntaxError(line, 'a quote inside an unquoted field (quote the whole field and double the quote)');
          i++;
        }
        if (text[i] === '\r' && text[i + 1] !== '\n') throw new CsvSyntaxError(line, 'a carriage return that does not end a line');
        field = text.slice(from, i);
      }
      fields.push(field);
      if (text[i] === ',') {
        i++;
        continue;
      }
      // End of the record: CRLF, LF or the end of the text.
      if (text[i] === '\r') i++;
      if (text[i] === '\n') {
        i++;
        line++;
      }
      break;
    }
    if (blank && fields.length === 1) continue;
    yield { line: start, fields };
  }
}
