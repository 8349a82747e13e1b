/* units: not written yet */
