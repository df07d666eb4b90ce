//! Built-in word and name lists of the synthetic generator: everyday vocabulary and the
//! people, places and organisations posts mention, so entity extraction and text search
//! have realistic material to work on. Written for this project.

/// People, as news and chatter mention them.
pub const PEOPLE: &[&str] = &[
    "Joe Biden", "Donald Trump", "Kamala Harris", "Barack Obama", "Hillary Clinton",
    "Bernie Sanders", "Nancy Pelosi", "Mitch McConnell", "Angela Merkel", "Emmanuel Macron",
    "Theresa May", "Boris Johnson", "Justin Trudeau", "Jacinda Ardern", "Vladimir Putin",
    "Xi Jinping", "Narendra Modi", "Pope Francis", "Greta Thunberg", "Elon Musk",
    "Jeff Bezos", "Mark Zuckerberg", "Bill Gates", "Tim Cook", "Oprah Winfrey",
    "Taylor Swift", "Beyonce", "Kanye West", "Lady Gaga", "Ed Sheeran", "Adele",
    "Rihanna", "Drake", "Billie Eilish", "Tom Hanks", "Meryl Streep", "Leonardo DiCaprio",
    "LeBron James", "Stephen Curry", "Serena Williams", "Roger Federer", "Rafael Nadal",
    "Lionel Messi", "Cristiano Ronaldo", "Neymar", "Tom Brady", "Simone Biles",
    "Usain Bolt", "Lewis Hamilton", "Tiger Woods", "Naomi Osaka", "Megan Rapinoe",
    "Anthony Fauci", "James Comey", "Robert Mueller", "Jeff Sessions", "Sean Spicer",
    "Mike Pence", "Elizabeth Warren", "Alexandria Ocasio-Cortez", "Pete Buttigieg",
];

/// Countries, cities and regions.
pub const PLACES: &[&str] = &[
    "America", "United States", "Washington", "New York", "Los Angeles", "Chicago",
    "Texas", "California", "Florida", "Ohio", "Michigan", "Pennsylvania", "Georgia",
    "Boston", "Seattle", "San Francisco", "Miami", "Denver", "Atlanta", "Houston",
    "London", "Paris", "Berlin", "Madrid", "Rome", "Brussels", "Moscow", "Beijing",
    "Tokyo", "Seoul", "Delhi", "Mumbai", "Sydney", "Toronto", "Mexico City",
    "Canada", "Mexico", "Brazil", "UK", "England", "Scotland", "Ireland", "France",
    "Germany", "Italy", "Spain", "Russia", "China", "Japan", "India", "Australia",
    "Syria", "Iran", "Israel", "North Korea", "Ukraine", "Venezuela", "Puerto Rico",
    "Europe", "Africa", "Asia", "the Middle East", "the White House", "Capitol Hill",
    "Wall Street", "Silicon Valley", "Hollywood", "Times Square",
];

/// Companies, institutions, parties, teams and media.
pub const ORGANISATIONS: &[&str] = &[
    "Facebook", "Twitter", "Google", "Apple", "Amazon", "Microsoft", "Netflix", "Tesla",
    "Uber", "Walmart", "Starbucks", "McDonald's", "Boeing", "Disney", "Nike",
    "CNN", "Fox News", "MSNBC", "BBC", "New York Times", "Washington Post", "Reuters",
    "NPR", "the Guardian", "Breitbart", "the FBI", "the CIA", "NASA", "the EPA",
    "the Supreme Court", "Congress", "the Senate", "the NHS", "the UN", "NATO", "the EU",
    "the WHO", "the Democrats", "the GOP", "the Republicans", "Labour", "the Tories",
    "the NFL", "the NBA", "FIFA", "the Olympics", "Real Madrid", "Barcelona",
    "Manchester United", "Liverpool", "Arsenal", "the Patriots", "the Warriors",
    "the Yankees", "the Cubs", "Harvard", "Stanford", "Oxford", "Greenpeace",
    "Planned Parenthood", "the NRA", "the ACLU", "Black Lives Matter",
];

/// Everyday words the generated sentences are made of.
pub const WORDS: &[&str] = &[
    "the", "the", "the", "a", "a", "and", "and", "to", "to", "of", "of", "in", "is", "it",
    "that", "this", "for", "on", "with", "was", "are", "be", "have", "not", "but", "just",
    "so", "all", "we", "they", "you", "I", "my", "our", "their", "what", "when", "why",
    "how", "who", "really", "never", "always", "again", "still", "today", "tonight",
    "yesterday", "tomorrow", "week", "year", "time", "people", "everyone", "nobody",
    "country", "city", "town", "family", "kids", "friends", "team", "game", "season",
    "match", "win", "lost", "score", "goal", "coach", "fans", "vote", "election",
    "president", "government", "law", "bill", "tax", "money", "jobs", "economy",
    "health", "care", "school", "teachers", "police", "news", "story", "report", "media",
    "truth", "lies", "fake", "real", "great", "good", "bad", "terrible", "amazing",
    "awesome", "sad", "happy", "angry", "funny", "crazy", "weird", "love", "hate",
    "think", "know", "believe", "feel", "want", "need", "said", "says", "saw", "watch",
    "read", "heard", "going", "coming", "made", "make", "take", "give", "got", "get",
    "can't", "don't", "won't", "didn't", "it's", "that's", "I'm", "we're", "they're",
    "weather", "rain", "snow", "summer", "winter", "coffee", "dinner", "lunch", "pizza",
    "dog", "cat", "car", "traffic", "work", "boss", "weekend", "party", "music", "movie",
    "show", "song", "concert", "book", "phone", "internet", "video", "picture", "post",
    "comment", "thread", "everybody", "maybe", "probably", "definitely", "literally",
    "honestly", "seriously", "finally", "about", "after", "before", "because", "if",
    "than", "more", "less", "much", "many", "some", "any", "every", "other", "new", "old",
    "big", "small", "best", "worst", "first", "last", "long", "short", "right", "wrong",
];

/// Emoji sprinkled into posts.
pub const EMOJI: &[&str] = &[
    "😂", "🤣", "😍", "😭", "🙏", "👍", "👏", "🔥", "💯", "❤️", "😡", "🤔", "🙄", "😱",
    "🎉", "⚽", "🏀", "🇺🇸", "🇬🇧", "😎",
];

/// Link domains.
pub const DOMAINS: &[&str] = &[
    "www.nytimes.com", "www.bbc.co.uk", "edition.cnn.com", "www.foxnews.com",
    "www.washingtonpost.com", "www.theguardian.com", "www.reuters.com", "apnews.com",
    "www.espn.com", "www.youtube.com", "youtu.be", "imgur.com", "i.redd.it",
    "www.instagram.com", "bit.ly", "medium.com", "www.npr.org", "www.politico.com",
];

/// Everyday hashtags.
pub const HASHTAGS: &[&str] = &[
    "#MondayMotivation", "#tbt", "#news", "#breaking", "#politics", "#election",
    "#sports", "#WorldCup", "#NBAFinals", "#SuperBowl", "#climate", "#health",
    "#love", "#family", "#weekend", "#fail", "#win", "#truth", "#MAGA", "#resist",
];
