import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsISO8601,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  MinLength,
  ValidateIf,
  ValidateNested,
} from 'class-validator';

const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/** Attributes an HR system may send. A null clears the attribute (on change). */
export class HrAttributesDto {
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @MaxLength(200) @Matches(NO_CONTROL) givenName?: string | null;
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @MaxLength(200) @Matches(NO_CONTROL) familyName?: string | null;
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @MaxLength(200) @Matches(NO_CONTROL) displayName?: string | null;
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsString()
  @MaxLength(254)
  @Matches(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { message: 'email must be an email address' })
  email?: string | null;
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @MaxLength(50) @Matches(/^[+0-9 ().-]{3,50}$/, { message: 'phone must be a phone number' }) phone?: string | null;
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @MaxLength(500) @Matches(NO_CONTROL) address?: string | null;
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @MaxLength(200) @Matches(NO_CONTROL) department?: string | null;
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @MaxLength(200) @Matches(NO_CONTROL) title?: string | null;
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @Matches(ID, { message: 'managerId must be an employee id' }) managerId?: string | null;
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @MaxLength(200) @Matches(NO_CONTROL) managerName?: string | null;
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @MaxLength(200) @Matches(NO_CONTROL) location?: string | null;
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @MaxLength(100) @Matches(NO_CONTROL) costCenter?: string | null;
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsIn(['employee', 'contractor', 'intern', 'temporary', 'vendor'])
  employmentType?: string | null;
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @MaxLength(200) @Matches(NO_CONTROL) division?: string | null;
  @IsOptional() @ValidateIf((_, v) => v !== null) @IsString() @MaxLength(200) @Matches(NO_CONTROL) organization?: string | null;
}

export const HR_EVENT_TYPES = ['hire', 'change', 'terminate', 'rehire'] as const;
export type HrEventType = (typeof HR_EVENT_TYPES)[number];

/** One fact from the HR system. `eventId` is the HR system's own id: the idempotency key. */
export class HrEventDto {
  @IsString() @Matches(ID, { message: 'eventId must be 1-128 characters: letters, digits, . _ : @ -' }) eventId!: string;
  @IsIn(HR_EVENT_TYPES as unknown as string[]) type!: HrEventType;
  @IsString() @Matches(ID, { message: 'employeeId must be 1-128 characters: letters, digits, . _ : @ -' }) employeeId!: string;
  /** A date (YYYY-MM-DD, taken as 00:00 UTC) or an ISO 8601 instant with offset. */
  @IsString()
  @IsISO8601({ strict: true }, { message: 'effectiveDate must be an ISO 8601 date or date-time' })
  effectiveDate!: string;
  @ValidateIf((o: HrEventDto) => o.type === 'hire' || o.attributes !== undefined)
  @ValidateNested()
  @Type(() => HrAttributesDto)
  attributes?: HrAttributesDto;
  @IsOptional() @IsString() @MinLength(1) @MaxLength(200) @Matches(NO_CONTROL) reason?: string;
}

export class HrBatchDto {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000, { message: 'a batch holds at most 1000 events' })
  @ValidateNested({ each: true })
  @Type(() => HrEventDto)
  events!: HrEventDto[];
}
