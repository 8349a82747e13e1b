/* log: not written yet */
