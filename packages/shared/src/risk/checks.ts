/** Checksums and range rules that turn a shape match into a finding (pure, allocation-light). */

/** Luhn (mod 10) over a string of ASCII digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

/**
 * Card numbers: 13–19 digits, Luhn-valid, issued by a major network (first digit 2–6: Mastercard
 * 2-series, Amex/Diners/JCB 3, Visa 4, Mastercard/Maestro 5, Discover/UnionPay 6). The prefix
 * rule keeps 13-digit epoch-millisecond timestamps (1…) and zero runs out.
 */
export function cardNumberValid(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19) return false
  const first = digits.charCodeAt(0) - 48
  if (first < 2 || first > 6) return false
  // 4444…4 style fillers are Luhn-valid at some lengths; nobody's card looks like that
  if (/^(\d)\1+$/.test(digits)) return false
  return luhnValid(digits)
}

/**
 * US SSN ranges the SSA never issues: area 000, 666, 900–999; group 00; serial 0000; plus the
 * two numbers famously printed on sample cards (078-05-1120, 219-09-9999).
 */
export function ssnValid(area: string, group: string, serial: string): boolean {
  if (area === '000' || area === '666' || area.charCodeAt(0) === 57 /* 9xx */) return false
  if (group === '00' || serial === '0000') return false
  const whole = `${area}${group}${serial}`
  return whole !== '078051120' && whole !== '219099999'
}

/** IBAN length per country (ISO 13616 registry); a country not listed is not accepted. */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, CH: 21, CR: 22,
  CY: 28, CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22,
  GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27,
  JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24, ME: 22,
  MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24,
  RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24,
  XK: 20,
}

/** ISO 7064 mod 97-10 over an IBAN without spaces (upper case): valid when the remainder is 1. */
export function ibanValid(iban: string): boolean {
  if (IBAN_LENGTHS[iban.slice(0, 2)] !== iban.length) return false
  let rem = 0
  // the check moves the first four characters to the end; letters count as 10–35
  for (let k = 0; k < iban.length; k++) {
    const c = iban.charCodeAt((k + 4) % iban.length)
    if (c >= 48 && c <= 57) rem = (rem * 10 + (c - 48)) % 97
    else if (c >= 65 && c <= 90) rem = (rem * 100 + (c - 55)) % 97
    else return false
  }
  return rem === 1
}
